"""The event bus: publish/subscribe of small JSON-able events by topic.

Collectors publish what they did (`collector.run`), the alert engine publishes `alert.raised`.
Two implementations share the same `subscribe` / `publish` interface:

* `EventBus` — in-process and synchronous: `publish` calls every handler before returning.
* `RedisEventBus` — Redis pub/sub, for several processes. Every event goes through Redis on
  channel `<prefix><topic>` as JSON; one listener thread per bus (a pattern subscription on
  `<prefix>*`) hands received events to the local handlers, so a handler runs once per event
  whether it was published here or in another process. When Redis cannot be reached, publish
  logs the failure and delivers to the local handlers (the process keeps working alone).

`make_bus(settings)` picks one: Redis when `OMC_REDIS_URL` is set, else in-process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from omc.core.config import Settings

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]


class Bus(Protocol):
    """What publishers and subscribers rely on."""

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    def publish(self, topic: str, event: dict[str, Any]) -> None: ...


class EventBus:
    """In-process bus; a failing subscriber is logged and never breaks the publisher."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Subscribe to `topic`; `*` receives every topic."""
        with self._lock:
            self._handlers[topic].append(handler)

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        self._dispatch(topic, event)

    def _dispatch(self, topic: str, event: dict[str, Any]) -> None:
        with self._lock:
            handlers = [*self._handlers.get(topic, ()), *self._handlers.get("*", ())]
        for handler in handlers:
            try:
                handler(topic, event)
            except Exception:
                log.exception("event handler failed on %s", topic)

    def close(self) -> None:
        """Nothing to release in-process."""


class RedisEventBus(EventBus):
    """Redis pub/sub behind the same interface (events are JSON, `default=str`)."""

    def __init__(self, url: str, *, prefix: str = "omc:", ready_timeout_s: float = 5.0) -> None:
        super().__init__()
        import redis  # only needed when a Redis URL is configured

        self.url = url
        self.prefix = prefix
        self.ready_timeout_s = ready_timeout_s
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Subscribe locally; the first subscription starts the listener and waits until
        Redis confirms it, so an event published afterwards (anywhere) is received."""
        super().subscribe(topic, handler)
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="omc-redis-bus", daemon=True
                )
                self._thread.start()
        if not self._ready.wait(self.ready_timeout_s):
            log.warning("redis bus: subscription not confirmed within %.1fs", self.ready_timeout_s)

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        data = json.dumps(event, default=str)
        try:
            self._redis.publish(self.prefix + topic, data)
        except Exception as exc:  # Redis down: this process still gets its own events
            log.error("redis bus: publish of %s failed (%s); delivering locally", topic, exc)
            self._dispatch(topic, json.loads(data))

    def _listen(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            pubsub = self._redis.pubsub()
            try:
                pubsub.psubscribe(self.prefix + "*")
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._ready.set()
                        delay = 0.1
                    elif message["type"] == "pmessage":
                        self._receive(str(message["channel"]), str(message["data"]))
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("redis bus: listener error (%s); reconnecting in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):  # a broken connection may fail again
                    pubsub.close()

    def _receive(self, channel: str, data: str) -> None:
        topic = channel[len(self.prefix) :]
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("redis bus: undecodable event on %s dropped", channel)
            return
        if isinstance(event, dict):
            self._dispatch(topic, event)

    def close(self) -> None:
        """Stop the listener and close the connection pool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._redis.close()


def make_bus(settings: Settings) -> EventBus:
    """Redis pub/sub when `OMC_REDIS_URL` is set, else the in-process bus."""
    if settings.redis_url:
        return RedisEventBus(settings.redis_url)
    return EventBus()
