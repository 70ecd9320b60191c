"""The web dashboard in a real browser (Debian's Chromium through Playwright): log in, see
prices and a listing arrive, read candles, run a backtest and open its report, a paper
session's fills, a Guard limit changed, the kill switch stopping the session, a Lab question;
a second user sees none of the first one's things; every page renders on a laptop and a
phone — and no page ever asks for anything outside 127.0.0.1. Screenshots of each page are
written as test artifacts ($OMC_TEST_ARTIFACTS/dashboard, else a temporary folder)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from omc.api.app import create_app
from omc.api.auth.users import create_user
from omc.core.config import Settings
from omc.core.db import make_engine
from omc.core.upsert import upsert
from omc.ledgers.exchange.candle_files import import_candles
from omc.ledgers.models import CatalystEvent, Tick
from omc.migrations import upgrade
from tests.api_support import PASSWORDS, api_settings
from tests.browser_support import CHROMIUM, Guarded, artifacts_dir, live_server, require_browser

pytestmark = pytest.mark.browser
NO_SWEEPS = "Parameter sweeps: not available on this server."  # the API has no sweep route
PAGES = ("overview", "collectors", "backtests", "lab", "floor", "alerts", "settings")
STATIC = Path(__file__).parents[1] / "omc" / "web" / "static"
CANDLES = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


@dataclass
class Site:
    base: str
    engine: Any
    shots: Path

    def get(self, user: str, path: str, body: Any = None) -> Any:
        """GET (or with a body POST) /api/v1<path> as `user`, with a Bearer token as an API
        client would."""
        api = f"{self.base}/api/v1"
        login = {"username": user, "password": PASSWORDS[user]}
        token = httpx.post(f"{api}/auth/login", json=login).json()["access_token"]
        res = httpx.request(
            "GET" if body is None else "POST",
            api + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert res.status_code < 300, res.text
        return res.json()


def add_ticks(engine: Any, prices: dict[str, str], age_s: int = 5) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=age_s)
    upsert(
        engine,
        Tick.__table__,
        [
            {"source": "coinspot", "coin": coin, "market": "aud", "ts": now,
             "bid": Decimal(p) * Decimal("0.999"), "ask": Decimal(p) * Decimal("1.001"),
             "last": Decimal(p), "volume": None, "collected_at": now}
            for coin, p in prices.items()
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()
    tmp = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{tmp / 'omc.db'}"
    engine = make_engine(url)
    upgrade(engine)
    part = tmp / "btc.csv"  # the first 3,000 demo candles: enough for every chart, quick
    part.write_text("\n".join(CANDLES.read_text().splitlines()[:3001]) + "\n")
    import_candles(engine, part, "demo", "BTC/USDT", "5m")
    add_ticks(engine, {"btc": "150000.5", "eth": "5200.25"}, age_s=60)
    add_ticks(engine, {"btc": "150210.75", "eth": "5190.5"})
    app = create_app(Settings(data_dir=tmp, database_url=url), api_settings(), engine)
    for name, password in PASSWORDS.items():
        create_user(engine, name, password, admin=name == "alice")
    with live_server(app) as base:
        yield Site(base, engine, artifacts_dir(tmp_path_factory.mktemp("shots")))
    engine.dispose()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Any, site: Site) -> Iterator[Guarded]:
    guarded = Guarded(browser, site.base, site.shots, viewport={"width": 1280, "height": 900})
    try:
        yield guarded
    finally:
        guarded.close()


def test_login_prices_arrive_and_candles(tab: Guarded, site: Site) -> None:
    page = tab.page
    page.goto("/")
    page.wait_for_selector("#login-form")
    tab.shot("login")
    page.fill("#login-form [name=username]", "alice")
    page.fill("#login-form [name=password]", "wrong-password-1")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('wrong user name or password')")
    tab.login("alice", PASSWORDS["alice"])
    page.wait_for_selector("#prices tr[data-coin=btc]")
    assert "150,210.75" in page.inner_text("#prices tr[data-coin=btc]")
    schema = httpx.get(f"{site.base}/api/v1/openapi.json").json()["paths"]
    if "/api/v1/ledgers/ticks" in schema:  # the sparkline draws the stored ticks
        assert page.locator("#prices tr[data-coin=btc] svg.spark polyline").count() == 1
    add_ticks(site.engine, {"sol": "310.125"}, age_s=1)  # a price arrives while we watch
    now = datetime.now(UTC)
    listing = {"source": "announcements", "event_id": "sol-listing", "kind": "listing",
               "title": "CoinSpot lists SOL", "url": None, "coins": ["SOL"], "impact": 0.9,
               "published_at": now, "payload": None, "collected_at": now}  # fmt: skip
    upsert(site.engine, CatalystEvent.__table__, [listing])  # ... and a listing
    page.wait_for_selector("#prices tr[data-coin=sol]", timeout=20000)
    assert "310.125" in page.inner_text("#prices tr[data-coin=sol]")
    flagged = page.wait_for_selector("#catalysts tr.listing.highlight", timeout=20000)
    assert "CoinSpot lists SOL" in flagged.inner_text()
    status = page.wait_for_selector("#candles .status:has-text('candles,')")
    with site.engine.connect() as conn:
        stored = conn.execute(text("select count(*) from candles")).scalar_one()
    assert status.inner_text().startswith(f"{stored:,} candles, 2023-01-02 16:45:00Z to ")
    page.select_option("#candle-form [name=view]", "1h")
    page.locator("#candle-chart canvas").hover()
    page.mouse.wheel(0, -400)
    page.wait_for_selector("#candle-chart .tip:has-text('O ')")
    tab.shot("overview")
    # the cookie is HttpOnly: the page's script cannot read the access token
    assert "omc_access" not in page.evaluate("document.cookie")


def test_backtest_runs_and_its_report_opens(tab: Guarded, site: Site) -> None:
    page = tab.page
    tab.login("alice", PASSWORDS["alice"])
    page.goto("/#/backtests")
    page.select_option("#bt-form [name=strategy]", "sma_cross")
    page.fill("#bt-form [name=params]", '{"fast": 12, "slow": 48}')
    page.fill("#bt-form [name=fee_bps]", "10")
    page.click("#bt-form button[type=submit]")
    queued = page.wait_for_selector("#bt-form .form-status:has-text('queued ')")
    job_id = queued.inner_text().removeprefix("queued ").strip()
    page.wait_for_selector(f"#bt-list tr[data-id='{job_id}'][data-status=done]", timeout=30000)
    tab.shot("backtests")
    page.click(f"#bt-list tr[data-id='{job_id}'] a:has-text('report')")
    page.wait_for_selector("#eq canvas")
    page.wait_for_selector("#trades table")
    shown = page.inner_text("#bt-metrics [data-metric=final_equity]")
    job = site.get("alice", f"/backtests/{job_id}")
    assert shown == f"{float(job['metrics']['final_equity']):,.2f}"
    assert page.locator("#tp canvas").count() == 1
    tab.shot("backtest-report")


def test_paper_session_fills_limits_and_the_kill_switch(tab: Guarded, site: Site) -> None:
    page = tab.page
    tab.login("alice", PASSWORDS["alice"])
    page.goto("/#/floor")
    page.wait_for_selector("#acc-list:not(:has-text('loading'))")
    page.fill("#acc-form [name=name]", "alice-paper")
    page.click("#acc-form button[type=submit]")
    page.wait_for_selector("#ses-form")
    page.fill("#ses-form [name=bars_per_second]", "100")
    page.click("#ses-form button[type=submit]")
    page.wait_for_selector("#sessions tr[data-status=running]")
    page.wait_for_selector("#fills tr[data-fill]", timeout=30000)  # fills appear as it replays
    page.wait_for_selector("#journal tr[data-kind=decision]")
    tab.shot("floor-session")
    # a Guard limit changed in the editor is what the API answers afterwards
    page.fill("#limits-form [name=max_open_positions]", "3")
    page.click("#limits-form button[type=submit]")
    page.wait_for_selector("#limits .form-status:has-text('saved max_open_positions')")
    limits = site.get("alice", "/accounts/alice-paper/limits")
    assert limits["limits"]["max_open_positions"] == 3
    assert "max_open_positions" in limits["overridden"]
    # the kill switch acts only once the account's name is typed
    kill = page.locator("#kill-form button[type=submit]")
    page.fill("#kill-form [name=confirm]", "alice-pape")
    assert kill.is_disabled()
    page.fill("#kill-form [name=confirm]", "alice-paper")
    assert kill.is_enabled()
    kill.click()
    page.wait_for_selector("#kill-state:has-text('ON since')")
    page.wait_for_selector("#sessions tr[data-status=stopped]")
    assert page.locator("#sessions tr[data-status=running]").count() == 0
    sessions = site.get("alice", "/accounts/alice-paper/sessions")["items"]
    assert sessions and all(s["status"] not in ("running", "queued", "paused") for s in sessions)
    tab.shot("floor-killed")


def test_a_lab_goal_asks_its_question(tab: Guarded, site: Site) -> None:
    page = tab.page
    tab.login("alice", PASSWORDS["alice"])
    page.goto("/#/lab")
    page.wait_for_selector("#lab-list:not(:has-text('loading'))")
    page.fill("#goal-form [name=goal]", "predict the price over the next hour")
    page.click("#goal-form button[type=submit]")
    page.wait_for_selector("#lab-ask:has-text('Which coin')")  # the planner's question
    assert page.is_visible("#answer-form [name=answer]")
    tab.shot("lab-question")


def test_a_second_user_sees_none_of_the_first_users_things(tab: Guarded, site: Site) -> None:
    page = tab.page
    # alice's things (made here too: under pytest-xdist this test may run on its own)
    job = site.get("alice", "/backtests", {"strategy": "sma_cross", "symbol": "BTC/USDT"})
    site.get("alice", "/accounts", {"name": "alice-private"})
    study = site.get("alice", "/lab/sessions", {"goal": "predict the price tomorrow"})
    tab.login("bob", PASSWORDS["bob"])
    page.goto("/#/backtests")
    page.wait_for_selector("#bt-list:has-text('no backtests yet')")
    page.goto(f"/#/backtests/{job['id']}")
    page.wait_for_selector("#bt-report .error:has-text('no such backtest')")
    page.goto("/#/floor")
    page.wait_for_selector("#acc-list:has-text('no accounts yet')")
    page.goto("/#/floor/alice-private")
    page.wait_for_selector("#acc-head .error")
    page.goto("/#/lab")
    page.wait_for_selector("#lab-list:has-text('no studies yet')")
    page.goto(f"/#/lab/{study['id']}")
    page.wait_for_selector("#lab-head .error:has-text('no such')")
    page.goto("/#/collectors")  # bob is no admin
    page.wait_for_selector("#page:has-text('Only an admin')")


def test_every_page_renders_on_a_laptop_and_a_phone(browser: Any, site: Site) -> None:
    for name, viewport in (("laptop", {"width": 1280, "height": 900}),
                           ("phone", {"width": 390, "height": 844})):  # fmt: skip
        tab = Guarded(browser, site.base, site.shots, viewport=viewport, has_touch=name == "phone")
        try:
            tab.login("alice", PASSWORDS["alice"])
            for page_name in PAGES if name == "laptop" else ("overview", "floor"):
                tab.page.goto(f"/#/{page_name}")
                tab.page.wait_for_selector(f"#page[data-page={page_name}] h1")
                missing = tab.page.locator("[data-unavailable]").all_inner_texts()
                assert set(missing) <= {NO_SWEEPS}, (page_name, missing)
                tab.page.wait_for_load_state("networkidle")
                tab.shot(f"{page_name}-{name}", full_page=name == "laptop")
            if name == "phone":
                assert tab.page.is_hidden("#nav a[data-page=floor]")
                tab.page.click("#menu")
                tab.page.click("#nav a[data-page=backtests]")
                tab.page.wait_for_selector("#page[data-page=backtests] h1")
        finally:
            tab.close()


def test_assets_are_local_and_the_page_is_locked_to_its_origin(site: Site) -> None:
    """No asset names another host, and the page's Content-Security-Policy allows only self."""
    for path in STATIC.rglob("*"):
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path
    res = httpx.get(site.base + "/")
    assert res.status_code == 200 and "Oh My Coins" in res.text
    assert "default-src 'self'" in res.headers["content-security-policy"]
    assert (
        httpx.get(site.base + "/static/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert httpx.get(site.base + "/static/../pyproject.toml").status_code == 404
