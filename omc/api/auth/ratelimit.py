"""The login limiter: failed logins counted per user name and per client address in a sliding
window, in process memory (one `omc serve` process; a restart forgets the counts).

`check` raises `RateLimited` (with the seconds to wait) before the password is even looked at;
`fail` records a failure; `succeed` clears the user name's count."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed logins")
        self.retry_after = retry_after


class LoginLimiter:
    def __init__(
        self,
        per_user: int,
        per_ip: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"user": per_user, "ip": per_ip}
        self.window = window_s
        self.clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def check(self, user: str, ip: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (("user", user.lower()), ("ip", ip)):
                hits = self._recent(key, now)
                if len(hits) >= self.limits[key[0]]:
                    raise RateLimited(max(hits[0] + self.window - now, 1.0))

    def fail(self, user: str, ip: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (("user", user.lower()), ("ip", ip)):
                self._recent(key, now).append(now)
            if len(self._hits) > 100_000:  # bound memory under a spray of names
                self._hits = {k: v for k, v in self._hits.items() if v}

    def succeed(self, user: str) -> None:
        with self._lock:
            self._hits.pop(("user", user.lower()), None)
