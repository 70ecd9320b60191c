"""The event bus: in-process delivery, and Redis pub/sub across bus instances."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from omc.core.config import Settings
from omc.core.events import EventBus, RedisEventBus, make_bus
from tests.conftest import REDIS_URL, require_redis


@pytest.fixture
def redis_buses() -> Iterator[tuple[RedisEventBus, RedisEventBus]]:
    require_redis()
    a, b = (
        RedisEventBus(REDIS_URL, prefix="omc-test:"),
        RedisEventBus(REDIS_URL, prefix="omc-test:"),
    )
    yield a, b
    a.close()
    b.close()


def test_in_process_bus_survives_a_failing_handler() -> None:
    bus = EventBus()
    got: list[tuple[str, dict[str, Any]]] = []
    bus.subscribe("alert.raised", lambda _t, _e: 1 / 0)
    bus.subscribe("*", lambda topic, event: got.append((topic, event)))
    bus.publish("alert.raised", {"id": 1})
    assert got == [("alert.raised", {"id": 1})]


def test_make_bus_picks_redis_when_configured() -> None:
    assert type(make_bus(Settings(_env_file=None))) is EventBus  # type: ignore[call-arg]
    bus = make_bus(Settings(_env_file=None, redis_url=REDIS_URL))  # type: ignore[call-arg]
    assert isinstance(bus, RedisEventBus)
    bus.close()


def test_redis_bus_publish_in_one_instance_receive_in_another(
    redis_buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    publisher, subscriber = redis_buses
    received: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()

    def handler(topic: str, event: dict[str, Any]) -> None:
        received.append((topic, event))
        done.set()

    subscriber.subscribe("alert.raised", handler)
    publisher.publish("collector.run", {"collector": "x"})  # another topic: not received
    publisher.publish("alert.raised", {"id": 7, "coins": ["RNDR"]})
    assert done.wait(5)
    assert received == [("alert.raised", {"id": 7, "coins": ["RNDR"]})]


def test_redis_bus_falls_back_to_local_delivery_when_redis_is_down() -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0", ready_timeout_s=0.1)
    got: list[dict[str, Any]] = []
    bus.subscribe("alert.raised", lambda _t, e: got.append(e))
    bus.publish("alert.raised", {"id": 1})
    assert got == [{"id": 1}]
    bus.close()
