"""Settings: OMC_ environment variables, .env files, defaults that need no services."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from omc.core.config import Settings


def test_defaults_need_no_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'omc-data' / 'omc.db'}"
    assert settings.redis_url is None
    assert settings.coinspot_base_url == "https://www.coinspot.com.au"
    assert 5 <= settings.coinspot_interval_s <= 10
    assert settings.fee_taker_bps == Decimal("10")


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "OMC_COINSPOT_BASE_URL=http://127.0.0.1:9999\nOMC_COINSPOT_TRADE_COINS=BTC, eth\n"
    )
    monkeypatch.setenv("OMC_DATABASE_URL", "postgresql+psycopg://u@h:5432/db")
    monkeypatch.setenv("OMC_TICK_CANDLE_TIMEFRAMES", "1m,15m")
    settings = Settings()
    assert settings.coinspot_base_url == "http://127.0.0.1:9999"
    assert settings.coinspot_trade_coins == ["btc", "eth"]
    assert settings.tick_candle_timeframes == ["1m", "15m"]
    assert settings.effective_database_url == "postgresql+psycopg://u@h:5432/db"


def test_invalid_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMC_COINSPOT_INTERVAL_S", "0")
    with pytest.raises(ValueError, match="coinspot_interval_s"):
        Settings(_env_file=None)


def test_readme_documents_every_setting() -> None:
    from omc.cli.db import setting_groups

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [
        f"{str(group.model_config.get('env_prefix', 'OMC_')).upper()}{name.upper()}"
        for group in setting_groups()
        for name in group.model_fields
        if f"`{str(group.model_config.get('env_prefix', 'OMC_')).upper()}{name.upper()}`"
        not in readme
    ]
    assert not missing, f"README configuration table lacks {missing}"
