"""Shared plumbing of the Human collectors: HTTP clients from settings, and secret redaction.

Secrets (the CryptoPanic token travels in the query string, as its API requires; Reddit's
client secret and bearer token in headers) must never reach a log line, an error message, a
run record or the quarantine. `Redactor` replaces every configured secret (and its
URL-encoded form) with `***` in text and in nested payloads; `install_log_redaction()` puts
one on the `httpx` / `httpcore` loggers, which log full request URLs at INFO/DEBUG.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, quote_plus

from omc.core.config import Settings
from omc.core.http import HttpClient, HttpError, PayloadError, RetryPolicy, Unreachable

MASK = "***"
USER_AGENT = "oh-my-coins/0.1 (+https://github.com/ohmycoins)"


class Redactor(logging.Filter):
    """Masks secrets in strings, payloads, exceptions and (as a logging filter) log records."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        variants: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                variants |= {secret, quote(secret, safe=""), quote_plus(secret)}
        self.secrets = sorted(variants, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def payload(self, value: Any) -> Any:
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.payload(k): self.payload(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.payload(v) for v in value]
        return value

    def http_error(self, exc: HttpError) -> HttpError:
        kind = Unreachable if isinstance(exc, Unreachable) else HttpError  # keep "stop the run"
        return kind(
            self.text(str(exc)), url=self.text(exc.url), status=exc.status, body=self.text(exc.body)
        )

    def payload_error(self, exc: PayloadError) -> PayloadError:
        return PayloadError(self.text(exc.reason), self.text(exc.raw))

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = self.text(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Mask `redactor`'s secrets in everything httpx/httpcore and OMC's HTTP helper log."""
    for name in ("httpx", "httpcore", "omc.core.http", "omc.ledgers.collectors.base"):
        logger = logging.getLogger(name)
        if redactor not in logger.filters:
            logger.addFilter(redactor)


def remove_log_redaction(redactor: Redactor) -> None:
    for name in ("httpx", "httpcore", "omc.core.http", "omc.ledgers.collectors.base"):
        logging.getLogger(name).removeFilter(redactor)


def http_client(
    settings: Settings,
    base_url: str,
    source: str,
    *,
    rate_per_s: float | None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> HttpClient:
    """An HttpClient with the shared timeout / retry settings."""
    return HttpClient(
        base_url,
        source=source,
        timeout_s=settings.http_timeout_s,
        retry=RetryPolicy(
            settings.http_max_retries, settings.http_backoff_base_s, settings.http_backoff_max_s
        ),
        rate_per_s=rate_per_s,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        **kwargs,
    )


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
