"""The queue's job journal (`ops_jobs`) on SQLite and PostgreSQL: one claim per slot, attempts
counted per start, a poison job dead-lettered after the last attempt, done jobs not rerun."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from omc.ops.queue import journal
from omc.ops.queue.scheduler import Schedule, Scheduler, slot_start


def test_a_slot_is_claimed_once(engine: Engine) -> None:
    first = journal.claim(engine, "collect", {"source": "a"}, slot_key="collect:a@t")
    assert first is not None
    assert journal.claim(engine, "collect", {"source": "a"}, slot_key="collect:a@t") is None


def test_attempts_and_dead_letters(engine: Engine) -> None:
    job = journal.claim(engine, "collect", {})
    assert job is not None
    assert journal.begin(engine, job, "collect", {}, "w1", max_attempts=2).attempt == 1
    journal.fail(engine, job, "boom", dead=False)
    assert journal.begin(engine, job, "collect", {}, "w2", max_attempts=2).run
    # the worker of attempt 2 dies: the third start gives up
    third = journal.begin(engine, job, "collect", {}, "w3", max_attempts=2)
    assert not third.run and "gave up after 2 attempts" in third.reason
    [letter] = journal.dead_letters(engine)
    assert letter.id == job and "boom" in (letter.error or "")
    assert not journal.begin(engine, job, "collect", {}, "w4", max_attempts=2).run


def test_a_done_job_is_not_run_again_unless_pure(engine: Engine) -> None:
    job = journal.claim(engine, "collect", {})
    assert job is not None and journal.begin(engine, job, "collect", {}, "w", 3).run
    assert journal.finish(engine, job)
    assert not journal.begin(engine, job, "collect", {}, "w", 3).run
    assert journal.begin(engine, job, "collect", {}, "w", 3, pure=True).run


def test_slots_and_two_schedulers(engine: Engine) -> None:
    now = datetime(2026, 12, 3, 13, 40, 7, tzinfo=UTC)
    assert slot_start(now, 5) == datetime(2026, 12, 3, 13, 40, 5, tzinfo=UTC)
    sent: list[tuple[str, str]] = []
    schedules = [Schedule("collect:a", "collect", 5, {"source": "a"})]

    def make() -> Scheduler:
        return Scheduler(
            engine,
            schedules,
            lease_s=30,
            send=lambda kind, job, args: sent.append((job, args["slot"])),
            clock=lambda: now,
        )

    active, standby = make(), make()
    active.step()
    standby.step()
    assert active.active and not standby.active
    assert [slot for _, slot in sent] == ["2026-12-03T13:40:05Z"]
    standby.lease = active.lease  # even two "active" schedulers claim a slot once
    standby.step()
    assert len(sent) == 1


def test_missed_slots_are_caught_up_within_the_grace(engine: Engine) -> None:
    clock = [datetime(2026, 12, 3, 13, 40, 0, tzinfo=UTC)]
    sent: list[str] = []
    scheduler = Scheduler(
        engine,
        [Schedule("collect:a", "collect", 5, {"source": "a"})],
        lease_s=30,
        send=lambda kind, job, args: sent.append(args["slot"][11:19]),
        clock=lambda: clock[0],
        catch_up_s=12,
    )
    scheduler.step()
    clock[0] += timedelta(seconds=16)  # three slots passed while this scheduler stalled
    scheduler.step()
    clock[0] += timedelta(seconds=100)  # a long outage: only the last 12 s are caught up
    scheduler.step()
    assert sent == [
        "13:40:00", "13:40:05", "13:40:10", "13:40:15", "13:41:40", "13:41:45", "13:41:50",
        "13:41:55",
    ]  # fmt: skip
