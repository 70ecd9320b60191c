"""Secrets never shown: URL credentials masked in `omc config`, CCXT's debug log, a Telegram
token cut by an error limit, signed CoinSpot requests never redirected to another host, and
the CoinSpot nonce store keyed by (a hash of) the API key, not by the data directory."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omc.core.config import Settings, get_settings
from omc.core.http import HttpError, RetryPolicy
from omc.core.masking import Redactor, mask_setting, mask_text, mask_url
from omc.floor.venues.coinspot_client import CoinSpotPrivateClient
from omc.floor.venues.coinspot_models import CoinSpotOutcomeUnknown
from omc.floor.venues.coinspot_signing import CoinSpotCredentials
from omc.ledgers.catalyst.notifiers import NotifyError, TelegramNotifier
from tests.fakes.notify_server import FakeHttpServer, Reply, Request, running

INFURA_KEY = "9aa3d95b3bc440fa88ea12eaa4456161"
ALCHEMY_KEY = "Xk2aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT"
TELEGRAM = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def leaked(secret: str, text: str, window: int = 6) -> list[str]:
    """Every `window`-long piece of `secret` found in `text` (wrapped table cells too)."""
    return [secret[i : i + window] for i in range(len(secret) - window + 1)
            if secret[i : i + window] in text]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://omc:pgq7w3zr@db:5432/omc", "postgresql+psycopg://omc:***@db:5432/omc"),
        ("redis://:rdk4m8vx@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"https://api.telegram.org/bot{TELEGRAM}/sendMessage", "https://api.telegram.org/bot***/sendMessage"),
        ("https://hooks.slack.com/services/T0001/B0001/slacksecret0123456789", "https://hooks.slack.com/services/***"),
        ("https://discord.com/api/webhooks/1234/abcdefTOKEN", "https://discord.com/api/webhooks/1234/***"),
        (f"https://mainnet.infura.io/v3/{INFURA_KEY}", "https://mainnet.infura.io/v3/***"),
        (f"https://eth-mainnet.g.alchemy.com/v2/{ALCHEMY_KEY}", "https://eth-mainnet.g.alchemy.com/v2/***"),
        ("https://x.io/api/posts/?auth_token=abcd1234&kind=news", "https://x.io/api/posts/?auth_token=***&kind=news"),
        ("https://x.io/feed?apikey=zz&api_key=yy&key=k&token=t&page=2", "https://x.io/feed?apikey=***&api_key=***&key=***&token=***&page=2"),
        # nothing to hide: unchanged
        ("https://www.coindesk.com/arc/outboundfeeds/rss/", None),
        ("https://coinspot.zendesk.com/hc/en-us/articles/360000123456-New-listing-Pepe", None),
        ("https://www.sec.gov/Archives/edgar/data/1679788/000167978824000012/x.htm", None),
        ("postgresql+psycopg://omc@localhost/omc", None),
        ("sqlite:////tmp/omc-data/omc.db", None),
    ],
)  # fmt: skip
def test_mask_url(url: str, shown: str | None) -> None:
    assert mask_url(url) == (shown or url)
    assert mask_text(f"failed on {url}, retrying") == f"failed on {shown or url}, retrying"


def test_mask_text_header_dumps_and_bare_tokens() -> None:
    line = "GET https://h/x, Request: {'X-MBX-APIKEY': 'binKEY123', 'sign': 'abc'} a=1&signature=ff"
    masked = mask_text(line)
    assert "binKEY123" not in masked and "'sign': '***'" in masked and "signature=***" in masked
    assert mask_text(f"token {TELEGRAM} refused") == "token *** refused"
    assert mask_text("at 12:30:45, 2024-01-01T10:20:30Z") == "at 12:30:45, 2024-01-01T10:20:30Z"
    assert mask_setting("alert_webhook_urls", ["https://e.com/hooks/abc?x=1"]) == [
        "https://e.com/***"
    ]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_DATABASE_URL": "postgresql+psycopg://omc:pgq7w3zr@db.example:5432/omc",
        "OMC_REDIS_URL": "redis://:rdk4m8vx@127.0.0.1:6379/0",
        "OMC_ETHEREUM_RPC_URLS": f"https://mainnet.infura.io/v3/{INFURA_KEY},"
        f"https://eth-mainnet.g.alchemy.com/v2/{ALCHEMY_KEY}",
        "OMC_ALERT_WEBHOOK_URLS": "https://example.com/hooks/whp2n6ty?token=whq9b5cj",
        "OMC_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0001/B0001/slx3v7kd",
        "OMC_TELEGRAM_BOT_TOKEN": TELEGRAM,
        "OMC_CRYPTOPANIC_BASE_URL": "https://cryptopanic.com/?auth_token=cpt8r2mf",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


SECRETS = ("pgq7w3zr", "rdk4m8vx", INFURA_KEY, ALCHEMY_KEY, "whp2n6ty", "whq9b5cj",
           "slx3v7kd", TELEGRAM.split(":")[1], "cpt8r2mf")  # fmt: skip


@pytest.mark.parametrize("args", [["config"], ["config", "--json"]])
def test_omc_config_masks_every_credential(
    cli_env: dict[str, str], args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from omc.cli.app import app
    from omc.cli.context import console

    monkeypatch.setattr(console, "width", 2000)  # whole cells, not "https://mainn…"

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    found = {secret: leaked(secret, result.output) for secret in SECRETS}
    assert not any(found.values()), f"secrets shown: {found}"
    if "--json" in args:
        shown = json.loads(result.output)
        assert shown["database_url"] == "postgresql+psycopg://omc:***@db.example:5432/omc"
        assert shown["ethereum_rpc_urls"][0] == "https://mainnet.infura.io/v3/***"
        assert shown["telegram_bot_token"] == "***" and shown["telegram_chat_id"] is None
        assert shown["http_timeout_s"] == 10.0  # the rest is shown as it is


def test_ccxt_debug_log_never_shows_the_api_key(caplog: pytest.LogCaptureFixture) -> None:
    from omc.floor.venues.ccxt_venue import CcxtCredentials, CcxtVenue
    from tests.fakes.ccxt_exchange_server import API_KEY, API_SECRET, FakeBinanceTrading

    fake = FakeBinanceTrading().start()
    try:
        settings = Settings(_env_file=None, ccxt_base_url=fake.url, http_timeout_s=5)  # type: ignore[call-arg]
        creds = CcxtCredentials(api_key=API_KEY, api_secret=API_SECRET)
        venue = CcxtVenue.from_settings("binance", settings, creds, symbols=("BTC/USDT",))
        with caplog.at_level(logging.DEBUG):
            venue.balances()
    finally:
        fake.stop()
    assert "Request:" in caplog.text  # CCXT did log the signed request's headers
    assert API_KEY not in caplog.text and API_SECRET not in caplog.text


class EchoingProxy(FakeHttpServer):
    """A proxy's 502 page that echoes the request path 170 characters in (a cut at 200
    falls inside the bot token)."""

    def route(self, request: Request) -> Reply:
        return Reply(502, "x" * 160 + f" upstream {request.path} failed", "text/plain")


def test_telegram_token_cut_by_the_error_limit_is_still_masked() -> None:
    for server in running(EchoingProxy()):
        notifier = TelegramNotifier(
            TELEGRAM, "-100", server.url, retry=RetryPolicy(0, 0, 0), sleep=lambda s: None
        )
        with pytest.raises(NotifyError) as caught:
            notifier.send({"id": 1, "kind": "listing", "title": "t", "coins": ["X"]})
    message = str(caught.value)
    assert "502" in message and "bot***" in message
    assert not leaked(TELEGRAM.split(":")[1], message), message


def test_redactor_masks_known_secrets_then_cuts() -> None:
    redactor = Redactor("s3cr3t-value-123")
    text = "a" * 95 + " s3cr3t-value-123 tail"
    assert redactor.text(text, 100) == ("a" * 95 + " *** tail")[:100]
    assert redactor.payload({"raw": "s3cr3t-value-123", "n": 1}) == {"raw": "***", "n": 1}


class Redirecting(FakeHttpServer):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def route(self, request: Request) -> Reply:
        return Reply(307, "", "text/plain", headers={"Location": self.target + request.path})


class Recorder(FakeHttpServer):
    def route(self, request: Request) -> Reply:
        return Reply(200, {"status": "ok", "balances": []})


def test_signed_requests_never_follow_a_redirect_to_another_origin(tmp_path: Path) -> None:
    for elsewhere in running(Recorder()):
        for api in running(Redirecting(elsewhere.url)):
            client = CoinSpotPrivateClient(
                "key-that-must-stay-home",
                "secret",
                base_url=api.url,
                retry=RetryPolicy(2, 0, 0),
                rate_per_s=None,
                sleep=lambda s: None,
            )
            with pytest.raises(HttpError, match="redirect"):
                client.balances()
            with pytest.raises(CoinSpotOutcomeUnknown):
                client.buy("BTC", Decimal("0.1"), Decimal(1))
            client.close()
            assert len(api.requests) == 2  # a read is not retried into the same redirect
        assert elsewhere.requests == []  # the key and signature never left for another host


def test_nonce_store_is_per_api_key_not_per_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("OMC_COINSPOT_NONCE_DIR", raising=False)
    creds = CoinSpotCredentials(_env_file=None, api_key="my-api-key-0001", api_secret="s")  # type: ignore[call-arg]
    paths = []
    for data_dir in ("a", "b"):
        settings = Settings(_env_file=None, data_dir=tmp_path / data_dir)  # type: ignore[call-arg]
        client = CoinSpotPrivateClient.from_settings(settings, creds)
        paths.append(client.nonces.path)
        client.close()
    assert paths[0] == paths[1] and paths[0] is not None
    assert paths[0].parent == tmp_path / "state" / "omc" / "coinspot-nonces"
    assert "my-api-key-0001" not in str(paths[0])
    other = CoinSpotCredentials(_env_file=None, api_key="another-key", api_secret="s")  # type: ignore[call-arg]
    client = CoinSpotPrivateClient.from_settings(Settings(_env_file=None), other)  # type: ignore[call-arg]
    assert client.nonces.path != paths[0]
    client.close()
