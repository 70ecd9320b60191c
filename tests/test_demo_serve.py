"""`omc demo --serve`'s staging (omc.cli.demo_serve.stage), on SQLite and PostgreSQL: the demo
user with a one-time random password owns the demo backtest job, a paper session replaying
the demo candles and the demo's paper account; staging again makes a new password and reuses
the rest; the old password stops working."""

from __future__ import annotations

from pathlib import Path

from omc.api.app import create_app
from omc.api.auth.users import authenticate
from omc.api.services import accounts
from omc.cli import demo_serve
from omc.core.config import Settings
from omc.core.db import make_engine
from omc.demo.job import PAPER_ACCOUNT
from omc.ledgers.exchange.candle_files import import_candles
from tests.api_support import api_settings

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


def test_stage_gives_the_demo_to_a_demo_user(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    part = tmp_path / "btc.csv"
    part.write_text("\n".join(CSV.read_text().splitlines()[:801]) + "\n")
    import_candles(engine, part, "demo", "BTC/USDT", "5m")
    app = create_app(Settings(data_dir=tmp_path, database_url=db_url), api_settings(), engine)
    st = app.state.omc
    try:
        first = demo_serve.stage(st)
        user = authenticate(engine, "demo", first["password"])
        assert user is not None and user.is_admin and len(first["password"]) >= 16
        assert st.jobs.get(user.id, first["backtest"]) is not None
        session = st.paper.get(user.id, first["session"])
        assert session is not None and session.account == demo_serve.REPLAY_ACCOUNT
        assert session.request["bars_per_second"] == demo_serve.REPLAY_BARS_PER_SECOND
        assert accounts.owned(engine, user.id, PAPER_ACCOUNT) is not None
        assert first["lab"] is None  # no demo Lab study on this database
        again = demo_serve.stage(st)
        assert again["password"] != first["password"]
        assert authenticate(engine, "demo", first["password"]) is None
        assert authenticate(engine, "demo", again["password"]) is not None
        assert again["backtest"] == first["backtest"]
        st.paper.control(user.id, first["session"], "stop")
    finally:
        st.paper.shutdown(wait=True)
        st.jobs.shutdown(wait=True)
        engine.dispose()
