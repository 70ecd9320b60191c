"""CoinSpot private API: credentials, request signing, nonces, and the same-origin guard.

Signing: the JSON body is serialised once (`encode_body`: compact, Decimals as exact
numbers), those bytes are signed (`sign`: hex HMAC-SHA512 keyed with the secret) and the same
bytes are sent with the `key` and `sign` headers.

Nonces (`NonceSource`): `max(now_ms, last + 1)`, where `last` is shared by every client of the
same key in the process *and* persisted in a small file per API key (named by a hash of the
key, never the key) in one per-user directory (`OMC_COINSPOT_NONCE_DIR`, default
`~/.local/state/omc/coinspot-nonces`) guarded by an exclusive `flock`, so two processes —
even with different data directories — never send the same or a smaller nonce.

Secrets: key and secret are `SecretStr`, read from `OMC_COINSPOT_API_KEY` /
`OMC_COINSPOT_API_SECRET` by `CoinSpotCredentials`; they are never logged, never put in an
exception. A redirect to another origin is never followed (`SameOriginTransport`): httpx
would send the signed `key` / `sign` headers along.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omc.core.db_types import decimal_text
from omc.floor.venues.coinspot_models import CoinSpotAuthError


class CoinSpotCredentials(BaseSettings):
    """The private API key pair, from `OMC_COINSPOT_API_KEY` / `OMC_COINSPOT_API_SECRET`."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_COINSPOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    nonce_dir: Path | None = Field(
        default=None,
        description="Where the last CoinSpot nonce of each API key is kept (one file per key, "
        "named by a hash of it). Unset: `$XDG_STATE_HOME/omc/coinspot-nonces` "
        "(`~/.local/state/omc/coinspot-nonces`), the same for every data directory.",
    )

    def nonce_store(self) -> Path:
        """The nonce directory: per user and machine, shared by every data directory."""
        if self.nonce_dir is not None:
            return self.nonce_dir
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "omc" / "coinspot-nonces"

    def require(self) -> tuple[SecretStr, SecretStr]:
        if not self.api_key or not self.api_secret:
            raise CoinSpotAuthError(
                "coinspot: no API key pair configured "
                "(set OMC_COINSPOT_API_KEY and OMC_COINSPOT_API_SECRET)",
                url="",
            )
        return self.api_key, self.api_secret


class CrossOriginRedirect(httpx.UnsupportedProtocol):
    """A signed request redirected to another origin: refused before anything was sent."""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class SameOriginTransport(httpx.BaseTransport):
    """Sends only to the API's own origin: httpx drops `Authorization` on a cross-origin
    redirect but not CoinSpot's `key` / `sign` headers, so such a request is refused."""

    def __init__(self, inner: httpx.BaseTransport, base_url: str) -> None:
        self.inner = inner
        self.origin = _origin(httpx.URL(base_url))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if _origin(request.url) != self.origin:
            scheme, host, port = _origin(request.url)
            raise CrossOriginRedirect(
                f"refused to follow a redirect of a signed request to {scheme}://{host}:{port}",
                request=request,
            )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class NonceSource:
    """Strictly increasing nonces for one API key, across threads, clients and processes.

    `next()` returns `max(now_ms, last + 1)`. `last` is kept per key in the process (every
    client of the key shares it) and, when `path` is given, in that file under an exclusive
    `flock`, so concurrent processes serialise on it and never reuse or go below a nonce."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _last: ClassVar[dict[str, int]] = {}

    def __init__(
        self, key_id: str, path: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.key_id = key_id
        self.path = path
        self.clock = clock

    @classmethod
    def for_key(
        cls, key: SecretStr | str, store: Path | None, clock: Callable[[], float] = time.time
    ) -> NonceSource:
        """The nonces of `key`, persisted in `store/nonce-<hash of the key>` (never the key)."""
        key_id = key_fingerprint(key)
        path = store / f"nonce-{key_id}" if store is not None else None
        return cls(key_id, path, clock)

    def next(self) -> int:
        with NonceSource._lock:
            now = int(self.clock() * 1000)
            last = NonceSource._last.get(self.key_id, 0)
            nonce = max(now, last + 1) if self.path is None else self._next_from_file(now, last)
            NonceSource._last[self.key_id] = nonce
            return nonce

    def _next_from_file(self, now: int, last: int) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.read(fd, 64).decode("ascii", "replace").strip()
            stored = int(text) if text.isdigit() else 0
            nonce = max(now, last + 1, stored + 1)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(nonce).encode("ascii"))
            return nonce
        finally:
            os.close(fd)  # closing releases the lock


def key_fingerprint(key: SecretStr | str) -> str:
    """A short, non-reversible id of an API key (file names, logs)."""
    raw = key.get_secret_value() if isinstance(key, SecretStr) else key
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_body(params: Mapping[str, Any]) -> bytes:
    """Serialise a flat parameter object once: compact JSON, Decimals as exact numbers."""
    parts = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Decimal):
            text = decimal_text(value)
        elif isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"unsupported parameter {name!r}: {type(value).__name__}")
        else:
            text = json.dumps(value)
        parts.append(f"{json.dumps(str(name))}:{text}")
    return ("{" + ",".join(parts) + "}").encode()


def sign(secret: SecretStr | str, body: bytes) -> str:
    """Hex HMAC-SHA512 of `body`, keyed with the API secret."""
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hmac.new(raw.encode(), body, hashlib.sha512).hexdigest()
