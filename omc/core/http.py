"""The one HTTP client helper every adapter uses: httpx plus retries, backoff and a rate limit.

Retries happen on timeouts, connection errors/resets, 500/502/503/504 and 429 — but not on
errors that cannot heal within a run: a host name that does not resolve (DNS), a TLS
certificate that does not verify, a network that is unreachable. Those raise `Unreachable`
at once, and a collector stops its run on it (one clear message, not one per request).
A refused connection is retried: the server may be restarting. Waits grow
exponentially with full jitter, capped at `backoff_max_s`; a 429 (or 503) carrying
`Retry-After` waits exactly what the server asked (seconds or an HTTP date). Each source gets
its own token-bucket rate limit. httpx's own transport retries cover only connection setup,
and tenacity would still need the Retry-After and rate-limit logic written here, so this
~100-line loop is hand-rolled on purpose.
"""

from __future__ import annotations

import email.utils
import errno
import json
import logging
import math
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.TransportError)
# Transport errors that no retry can fix (a bad URL scheme, a misconfigured proxy).
FATAL_TRANSPORT_EXCEPTIONS = (httpx.UnsupportedProtocol, httpx.ProxyError)


class RequestFailed(Exception):
    """A request that did not succeed: `HttpError` or `Unreachable`. Catch this where any
    failure of one request is handled the same way (a whole run, a notifier delivery, one of
    several hosts, an order); catch `HttpError` where only this endpoint failed and the run
    goes on — `Unreachable` then propagates and stops the run, with no re-raise needed."""

    def __init__(self, message: str, *, url: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body


class HttpError(RequestFailed):
    """A request that failed for good (after retries, or with a non-retryable status)."""


class Unreachable(RequestFailed):
    """The host cannot be reached this run (name not resolved, certificate not trusted,
    network unreachable): not retried, not an `HttpError`, and a collector stops its run on it."""


def unreachable_reason(exc: BaseException) -> str | None:
    """Why `exc` (an httpx transport error) cannot heal within a run, or None if it may."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return f"host name not resolved (DNS: {cause.strerror or cause})"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message or cause})"
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return "network unreachable (offline?)"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:  # httpx may keep only the message
        return f"TLS certificate not trusted ({text})"
    return None


class PayloadError(Exception):
    """A response that arrived but cannot be used (truncated JSON, HTML error page, …).

    Carries the raw body so the collector can quarantine it verbatim.
    """

    def __init__(self, reason: str, raw: str):
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class RateLimiter:
    """Token bucket: at most `rate_per_s` requests per second on average, bursts of `burst`."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate_per_s
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
            self.tokens -= 1
        if wait > 0:
            self.sleep(wait)


@dataclass
class RetryPolicy:
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Wait before retry number `attempt + 1`: what the server asked (capped at
        `backoff_max_s`), else exponential backoff with jitter in [ceiling / 2, ceiling]."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # delta-seconds (some servers send fractions); nonsense is ignored
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    """A per-source HTTP client: base URL, default headers, retries, rate limit."""

    def __init__(
        self,
        base_url: str,
        *,
        source: str,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        rate_per_s: float | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source = source
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.limiter = RateLimiter(rate_per_s, clock=clock, sleep=sleep) if rate_per_s else None
        self.attempts = 0
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers=headers or {},
            transport=transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request, retrying transient failures. Raises HttpError when it gives up."""
        attempt = 0
        while True:
            if self.limiter:
                self.limiter.acquire()
            self.attempts += 1
            url = str(self.client.base_url).rstrip("/") + path
            try:
                response = self.client.request(method, path, **kwargs)
            except FATAL_TRANSPORT_EXCEPTIONS as exc:
                raise HttpError(
                    f"{self.source}: {type(exc).__name__} on {method} {path}: {exc}", url=url
                ) from exc
            except RETRY_EXCEPTIONS as exc:
                reason = unreachable_reason(exc)
                if reason is not None:
                    host = _host(url)
                    raise Unreachable(
                        f"{self.source}: cannot reach {host}: {reason} (not retried)", url=url
                    ) from exc
                if attempt >= self.retry.max_retries:
                    raise HttpError(
                        f"{self.source}: {type(exc).__name__} on {method} {path} "
                        f"after {attempt + 1} attempts: {exc}",
                        url=url,
                    ) from exc
                wait = self.retry.delay(attempt)
                log.warning(
                    "%s: %s on %s, retry in %.2fs", self.source, type(exc).__name__, path, wait
                )
            except httpx.HTTPError as exc:  # decoding errors, redirect loops: not transient
                raise HttpError(
                    f"{self.source}: {type(exc).__name__} on {method} {path}: {exc}", url=url
                ) from exc
            else:
                if response.status_code < 400 or response.status_code == 304:
                    return response
                body = response.text[:2000]
                if response.status_code not in RETRY_STATUSES or attempt >= self.retry.max_retries:
                    raise HttpError(
                        f"{self.source}: HTTP {response.status_code} on {method} {path}"
                        + (f" after {attempt + 1} attempts" if attempt else ""),
                        url=url,
                        status=response.status_code,
                        body=body,
                    )
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                wait = self.retry.delay(attempt, retry_after)
                log.warning(
                    "%s: HTTP %s on %s, retry in %.2fs",
                    self.source,
                    response.status_code,
                    path,
                    wait,
                )
            self.sleep(wait)
            attempt += 1

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and decode JSON; an undecodable body raises PayloadError with the raw text."""
        return decode_json(self.get(path, **kwargs))


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except httpx.InvalidURL:
        return url


def decode_json(response: httpx.Response) -> Any:
    text = response.text
    try:
        return json.loads(text)
    except ValueError as exc:
        content_type = response.headers.get("content-type", "")
        html = "html" in content_type or text.lstrip().startswith("<")
        kind = "an HTML page" if html else "invalid JSON"
        raise PayloadError(f"{kind} instead of JSON ({exc})", text) from exc
