"""Listing alerts: raised exactly once, delivered to local webhook / Slack / Telegram servers
that check the real request formats; failures recorded and retried; secrets never shown."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from omc.core.config import Settings
from omc.core.events import EventBus
from omc.ledgers.catalyst.alerts import AlertEngine, list_alerts
from omc.ledgers.catalyst.announcements import AnnouncementsCollector
from omc.ledgers.collectors.base import CollectorRunner
from omc.ledgers.models import Alert
from tests.fakes.notify_server import SLACK_PATH, TELEGRAM_TOKEN, FakeNotify, Fault, running
from tests.fakes.zendesk_server import FakeZendesk, seed

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    yield from running(FakeZendesk())


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    yield from running(FakeNotify())


def make_settings(zendesk: FakeZendesk, notify: FakeNotify, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "announcements_base_url": zendesk.url,
        "http_timeout_s": 0.5,
        "http_max_retries": 2,
        "http_backoff_base_s": 0.01,
        "http_backoff_max_s": 0.05,
        "alert_webhook_urls": [notify.url + "/hook"],
        "slack_webhook_url": notify.slack_url,
        "telegram_bot_token": TELEGRAM_TOKEN,
        "telegram_chat_id": "-100123",
        "telegram_base_url": notify.url,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def pipeline(
    engine: Engine, settings: Settings
) -> tuple[CollectorRunner, AnnouncementsCollector, AlertEngine, list[dict[str, Any]]]:
    bus = EventBus()
    raised: list[dict[str, Any]] = []
    bus.subscribe("alert.raised", lambda _t, event: raised.append(event))
    alerts = AlertEngine.from_settings(engine, bus, settings).attach()
    collector = AnnouncementsCollector.from_settings(settings, engine=engine)
    return CollectorRunner(engine, bus), collector, alerts, raised


def alert_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Alert)).scalar_one())


def test_a_listing_raises_exactly_one_alert_delivered_everywhere(
    engine: Engine, zendesk: FakeZendesk, notify: FakeNotify
) -> None:
    zendesk.publish("How to deposit", created_at=NOW - timedelta(days=3))
    zendesk.publish("New Listing: Old (OLD)", created_at=NOW - timedelta(days=3))  # too old
    runner, collector, alerts, raised = pipeline(engine, make_settings(zendesk, notify))
    runner.run(collector)
    assert raised == [] and alert_count(engine) == 0

    article = zendesk.publish("New Listing: Render (RNDR)", "<p>RNDR/AUD is live</p>")
    runner.run(collector)
    assert [a["coins"] for a in raised] == [["RNDR"]]  # raised at once, on the bus
    assert alerts.wait(5)

    # re-polls, a 304, and an edit that names no new coin never raise it again
    runner.run(collector)
    zendesk.edit(article, at=NOW + timedelta(seconds=5), title="New Listing: Render Network (RNDR)")
    runner.run(collector)
    runner.run(collector)
    assert len(raised) == 1 and alert_count(engine) == 1
    assert alerts.raise_pending() == []  # a second scan (another process) finds nothing
    assert alerts.wait(5)

    (hook,) = notify.webhook
    assert hook["type"] == "omc.alert" and hook["alert"]["event_id"] == str(article)
    assert hook["alert"]["kind"] == "listing" and "RNDR" in hook["text"]
    (slack,) = notify.slack
    assert "RNDR" in slack["text"] and slack["blocks"][0]["text"]["type"] == "mrkdwn"
    (telegram,) = notify.telegram
    assert telegram["chat_id"] == "-100123" and "New Listing" in telegram["text"]
    slack_request = next(r for r in notify.requests if r.path == SLACK_PATH)
    assert slack_request.headers["content-type"] == "application/json"

    (stored,) = list_alerts(engine)
    assert {k: v["status"] for k, v in stored["deliveries"].items()} == {
        "webhook": "ok",
        "slack": "ok",
        "telegram": "ok",
    }
    alerts.close()


def test_a_coin_added_by_a_later_edit_raises_its_own_alert_once(
    engine: Engine, zendesk: FakeZendesk, notify: FakeNotify
) -> None:
    runner, collector, alerts, raised = pipeline(engine, make_settings(zendesk, notify))
    article = zendesk.publish("New Listing: Render (RNDR)", "<p>RNDR/AUD is live</p>")
    runner.run(collector)
    assert [(a["coin"], a["coins"]) for a in raised] == [("", ["RNDR"])]

    zendesk.edit(
        article,
        at=NOW + timedelta(seconds=5),
        title="New Listings: Render (RNDR) and Bonk (BONK)",
    )
    runner.run(collector)
    assert [(a["coin"], a["coins"]) for a in raised] == [("", ["RNDR"]), ("BONK", ["BONK"])]
    runner.run(collector)
    assert alerts.raise_pending() == []  # another scan (another process) raises nothing
    assert len(raised) == 2 and alert_count(engine) == 2
    assert alerts.wait(5)
    assert sum("BONK" in hook["text"] for hook in notify.webhook) == 1
    alerts.close()


def test_a_failing_notifier_is_retried_recorded_and_blocks_nobody(
    engine: Engine, zendesk: FakeZendesk, notify: FakeNotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(zendesk, notify)
    notify.inject(*[Fault("http", path=SLACK_PATH, status=500) for _ in range(3)])
    notify.inject(Fault("rate_limited", path="/bot", retry_after="0.01"))
    runner, collector, alerts, raised = pipeline(engine, settings)
    zendesk.publish("New Listing: Sui (SUI)")
    summary = runner.run(collector)
    assert summary.status == "ok" and len(raised) == 1
    assert alerts.wait(5)
    (stored,) = list_alerts(engine)
    deliveries = stored["deliveries"]
    assert deliveries["webhook"]["status"] == "ok"
    assert deliveries["telegram"]["status"] == "ok" and deliveries["telegram"]["attempts"] == 2
    assert deliveries["slack"]["status"] == "failed" and "HTTP 500" in deliveries["slack"]["error"]
    assert len([r for r in notify.requests if r.path == SLACK_PATH]) == 3  # 1 + 2 retries

    # secrets: never in the stored record, nor in any log line
    text = json.dumps(stored) + caplog.text
    assert TELEGRAM_TOKEN not in text and "slacksecret" not in text

    assert alerts.redeliver() == 1
    assert alerts.wait(5)
    (stored,) = list_alerts(engine)
    assert stored["deliveries"]["slack"]["status"] == "ok"
    assert stored["deliveries"]["slack"]["tries"] == 2
    assert len(notify.webhook) == 1 and len(notify.slack) == 1  # no duplicate notifications
    alerts.close()


def test_bad_telegram_token_is_refused_and_masked(
    engine: Engine, zendesk: FakeZendesk, notify: FakeNotify
) -> None:
    secret = "999:wrong-token-secret"
    settings = make_settings(zendesk, notify, telegram_bot_token=secret, alert_webhook_urls=[])
    runner, collector, alerts, _ = pipeline(engine, settings)
    zendesk.publish("New Listing: Pepe (PEPE)")
    runner.run(collector)
    assert alerts.wait(5)
    (stored,) = list_alerts(engine)
    telegram = stored["deliveries"]["telegram"]
    assert telegram["status"] == "failed" and "401" in telegram["error"]
    assert secret not in json.dumps(stored)
    alerts.close()


def test_omc_alerts_lists_alerts_without_secrets(
    engine: Engine, db_url: str, zendesk: FakeZendesk, notify: FakeNotify
) -> None:
    import typer

    from omc.cli import alerts as alerts_cli
    from omc.cli import context
    from omc.core.config import get_settings

    runner, collector, alerts, _ = pipeline(engine, make_settings(zendesk, notify))
    zendesk.publish("New Listing: Bonk (BONK)")
    runner.run(collector)
    assert alerts.wait(5)
    alerts.close()

    app = typer.Typer()
    alerts_cli.register(app)

    @app.callback()
    def _root() -> None:
        pass

    env = {
        "OMC_DATABASE_URL": db_url,
        "OMC_SLACK_WEBHOOK_URL": notify.slack_url,
        "OMC_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
    }
    get_settings.cache_clear()
    context.engine.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr(context.console, "width", 200)
        table = CliRunner().invoke(app, ["alerts"])
        as_json = CliRunner().invoke(app, ["alerts", "--json"])
        context.engine().dispose()
    get_settings.cache_clear()
    context.engine.cache_clear()
    assert table.exit_code == 0, table.output
    assert "New Listing: Bonk (BONK)" in table.output and "BONK" in table.output
    assert "slack:ok" in table.output.replace(" ", "") or "slack" in table.output
    (row,) = json.loads(as_json.stdout)
    assert row["coins"] == ["BONK"] and row["deliveries"]["telegram"]["status"] == "ok"
    for output in (table.output, as_json.output):
        assert TELEGRAM_TOKEN not in output and "slacksecret" not in output


def test_seeded_history_alerts_only_recent_listings(
    engine: Engine, zendesk: FakeZendesk, notify: FakeNotify
) -> None:
    seed(zendesk, NOW, listings=2)  # listings 1 h and 2 h old: recent enough
    runner, collector, alerts, raised = pipeline(engine, make_settings(zendesk, notify))
    runner.run(collector)
    assert sorted(a["coins"][0] for a in raised) == ["CN0X", "CN1X"]
    assert alerts.wait(5)
    alerts.close()
