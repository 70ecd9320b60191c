"""The event bus: in-process publish/subscribe of small JSON-able events by topic.

Collectors publish what they did (`collector.run`), later alerts and fills. A Redis-backed bus
(for several processes) plugs in behind the same two methods when `OMC_REDIS_URL` is set.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]


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
        with self._lock:
            handlers = [*self._handlers.get(topic, ()), *self._handlers.get("*", ())]
        for handler in handlers:
            try:
                handler(topic, event)
            except Exception:
                log.exception("event handler failed on %s", topic)
