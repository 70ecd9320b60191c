"""Shared plumbing of the Human collectors: HTTP clients from settings, short reprs.

Secrets (the CryptoPanic token travels in the query string, as its API requires; Reddit's
client secret and bearer token in headers) are masked with `omc.core.masking.Redactor`.
"""

from __future__ import annotations

from typing import Any

from omc.core.config import Settings
from omc.core.http import HttpClient, RetryPolicy

USER_AGENT = "oh-my-coins/0.1 (+https://github.com/ohmycoins)"


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
