"""HTTP clients from the settings: the one place the shared timeout and retry knobs
(`OMC_HTTP_TIMEOUT_S`, `OMC_HTTP_MAX_RETRIES`, `OMC_HTTP_BACKOFF_*`) become an `HttpClient`
or a `RetryPolicy`, with OMC's User-Agent unless the caller sends its own (SEC, Reddit)."""

from __future__ import annotations

from typing import Any

from omc.core.config import Settings
from omc.core.http import HttpClient, RetryPolicy

USER_AGENT = "oh-my-coins/0.1 (+https://github.com/ohmycoins)"


def retry_policy(settings: Settings) -> RetryPolicy:
    """The configured retries and backoff."""
    return RetryPolicy(
        settings.http_max_retries, settings.http_backoff_base_s, settings.http_backoff_max_s
    )


def http_client(
    settings: Settings,
    base_url: str,
    source: str,
    *,
    rate_per_s: float | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> HttpClient:
    """An HttpClient with the configured timeout and retries (`kwargs`: HttpClient's own)."""
    kwargs.setdefault("retry", retry_policy(settings))
    return HttpClient(
        base_url,
        source=source,
        timeout_s=settings.http_timeout_s,
        rate_per_s=rate_per_s,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        **kwargs,
    )
