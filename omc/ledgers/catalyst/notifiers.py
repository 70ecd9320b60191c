"""Alert notifiers: a generic JSON webhook, a Slack incoming webhook, a Telegram bot.

Each speaks its service's real request format:

* webhook — `POST <url>` with `{"type": "omc.alert", "alert": {...}, "text": "..."}`;
* Slack — `POST <incoming-webhook-url>` with `{"text": ..., "blocks": [section mrkdwn]}`;
  Slack answers `200 ok` (plain text) or an error code such as `400 invalid_payload`;
* Telegram — `POST {base}/bot<token>/sendMessage` with `{"chat_id", "text",
  "disable_web_page_preview"}`; the Bot API answers `{"ok": true, "result": {...}}` or
  `{"ok": false, "error_code", "description"}` (429 carries `parameters.retry_after`).

Transient failures (timeouts, resets, 5xx, 429 with Retry-After) are retried by the shared
HTTP helper; what still fails raises `NotifyError`. Secrets (the Slack URL, the bot token, a
webhook URL's path and query) never appear in logs, errors or `describe()`: every message is
passed through `mask()` (`omc.core.masking`) first, and masked before any cut.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from omc.core.clients import USER_AGENT, retry_policy
from omc.core.config import Settings
from omc.core.http import HttpClient, RequestFailed, RetryPolicy, parse_retry_after
from omc.core.masking import Redactor, mask_secret, mask_url, register_secrets


class NotifyError(Exception):
    """A notification that could not be delivered (message already masked)."""


def alert_text(alert: dict[str, Any]) -> str:
    """One human line per alert (used by Slack, Telegram and the webhook's `text`)."""
    coins = ", ".join(alert.get("coins") or []) or "?"
    kind = str(alert.get("kind", "alert")).replace("_", " ")
    text = f"OMC {kind} alert [{coins}]: {alert.get('title', '')}"
    if alert.get("url"):
        text += f"\n{alert['url']}"
    return text


class Notifier(ABC):
    """Sends one alert somewhere; `name` keys its entry in `alerts.deliveries`."""

    name: str

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy(max_retries=3, backoff_base_s=1.0, backoff_max_s=30.0)
        self.transport = transport
        self.sleep = sleep
        self.redactor = Redactor()

    @abstractmethod
    def describe(self) -> str:
        """Where this notifier sends, with secrets masked."""

    @abstractmethod
    def target(self) -> str:
        """The full URL posted to (a secret for Slack and Telegram)."""

    @abstractmethod
    def _send(self, http: HttpClient, alert: dict[str, Any], path: str) -> None:
        """POST `alert` to `path`; raise NotifyError/HttpError when the service refuses it."""

    def mask(self, text: str, limit: int | None = None) -> str:
        """`text` with this notifier's secrets and every credential pattern masked, then cut."""
        return self.redactor.text(text, limit)

    def _protect(self, *secrets: str) -> None:
        self.redactor = Redactor(*secrets)
        register_secrets(*secrets)  # httpx/httpcore log the URL with the token

    def send(self, alert: dict[str, Any]) -> int:
        """Deliver `alert` (retrying transient failures); returns the attempts made."""
        parts = urlsplit(self.target())
        http = HttpClient(
            f"{parts.scheme}://{parts.netloc}",
            source=self.name,
            timeout_s=self.timeout_s,
            retry=self.retry,
            sleep=self.sleep,
            transport=self.transport,
            headers={"User-Agent": USER_AGENT},
        )
        try:
            self._send(http, alert, parts.path + (f"?{parts.query}" if parts.query else ""))
            return http.attempts
        except RequestFailed as exc:
            # masked before the body is cut: a cut token would escape masking
            body = f" {self.mask(exc.body, 200)}" if exc.body else ""
            raise NotifyError(self.mask(str(exc)) + body) from None
        except NotifyError as exc:
            raise NotifyError(self.mask(str(exc))) from None
        except Exception as exc:  # anything else, still masked
            raise NotifyError(self.mask(f"{type(exc).__name__}: {exc}")) from None
        finally:
            http.close()


class WebhookNotifier(Notifier):
    """A JSON POST of the whole alert to any URL."""

    def __init__(self, url: str, index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.name = f"webhook{index}" if index else "webhook"
        parts = urlsplit(url)
        self._protect(*(s for s in (parts.path, parts.query) if len(s) > 1))

    def describe(self) -> str:
        return f"{self.name} -> {mask_url(self.url, whole_path=True)}"

    def target(self) -> str:
        return self.url

    def _send(self, http: HttpClient, alert: dict[str, Any], path: str) -> None:
        body = {"type": "omc.alert", "alert": alert, "text": alert_text(alert)}
        http.request("POST", path, json=body)


class SlackNotifier(Notifier):
    """A Slack incoming webhook (`hooks.slack.com/services/...`, itself a secret)."""

    name = "slack"

    def __init__(self, webhook_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = webhook_url
        self._protect(webhook_url, urlsplit(webhook_url).path)

    def describe(self) -> str:
        return f"slack -> {mask_url(self.url, whole_path=True)}"

    def target(self) -> str:
        return self.url

    def _send(self, http: HttpClient, alert: dict[str, Any], path: str) -> None:
        text = alert_text(alert)
        body = {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }
        response = http.request("POST", path, json=body)
        if response.text.strip() not in ("ok", ""):
            raise NotifyError(
                f"slack answered {response.status_code} {self.mask(response.text, 200)!r}"
            )


class TelegramNotifier(Notifier):
    """The Telegram Bot API's `sendMessage` (the token is part of the URL path)."""

    name = "telegram"

    def __init__(self, token: str, chat_id: str, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.chat_id = chat_id
        self.base_url = base_url.rstrip("/")
        self._protect(token)

    def describe(self) -> str:
        return f"telegram -> {self.base_url}/bot{mask_secret(self.token)} chat {self.chat_id}"

    def target(self) -> str:
        return f"{self.base_url}/bot{self.token}/sendMessage"

    def _send(self, http: HttpClient, alert: dict[str, Any], path: str) -> None:
        body = {
            "chat_id": self.chat_id,
            "text": alert_text(alert),
            "disable_web_page_preview": True,
        }
        for _ in range(3):
            try:
                response = http.request("POST", path, json=body)
            except RequestFailed as exc:
                if exc.status == 429:  # Bot API flood control: parameters.retry_after
                    wait = _telegram_retry_after(exc.body)
                    if wait is not None:
                        self.sleep(min(wait, self.retry.backoff_max_s))
                        continue
                raise
            try:
                answer = response.json()
            except ValueError:
                raise NotifyError(f"telegram: not JSON ({response.text[:100]!r})") from None
            if not isinstance(answer, dict) or answer.get("ok") is not True:
                description = answer.get("description") if isinstance(answer, dict) else answer
                raise NotifyError(f"telegram refused the message: {description}")
            return
        raise NotifyError("telegram: still rate limited")


def _telegram_retry_after(body: str) -> float | None:
    import json

    try:
        data = json.loads(body)
        return float(data["parameters"]["retry_after"])
    except (ValueError, KeyError, TypeError):
        return parse_retry_after(None)


def notifiers_from_settings(settings: Settings, **kwargs: Any) -> list[Notifier]:
    """Every notifier the settings configure (none configured: an empty list)."""
    kwargs.setdefault("timeout_s", settings.http_timeout_s)
    kwargs.setdefault("retry", retry_policy(settings))
    found: list[Notifier] = []
    for i, url in enumerate(settings.alert_webhook_urls):
        found.append(
            WebhookNotifier(url, index=i if len(settings.alert_webhook_urls) > 1 else 0, **kwargs)
        )
    if settings.slack_webhook_url is not None:
        found.append(SlackNotifier(settings.slack_webhook_url.get_secret_value(), **kwargs))
    if settings.telegram_bot_token is not None and settings.telegram_chat_id:
        found.append(
            TelegramNotifier(
                settings.telegram_bot_token.get_secret_value(),
                settings.telegram_chat_id,
                settings.telegram_base_url,
                **kwargs,
            )
        )
    return found
