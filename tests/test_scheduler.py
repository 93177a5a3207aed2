"""The reminder scheduler and the worker lock, with an injected clock, on both backends."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import session_by_key
from orchestrator.config import Settings
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants import service as people
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.models import AttendanceMode, Rsvp
from orchestrator.participants.schemas import PersonIn
from orchestrator.scheduling.lock import worker_lock
from orchestrator.scheduling.models import Reminder, ReminderState
from orchestrator.scheduling.planning import replan
from orchestrator.scheduling.scheduler import ReminderScheduler
from orchestrator.worker import run_worker
from tests.conftest import load_sample
from tests.smtp_server import SmtpServer, smtp_server_fixture, until

__all__ = ["smtp_server_fixture"]

Sessions = async_sessionmaker[AsyncSession]
BERLIN = ZoneInfo("Europe/Berlin")
PLANNED_AT = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
PEOPLE = 4
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def berlin(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=BERLIN)


async def _conference(session: AsyncSession, *, plan: bool = True) -> Conference:
    """The sample conference, four people on site with a seat each (11 reminders apiece)."""
    conference = await load_sample(session)
    for number in range(PEOPLE):
        data = PersonIn(email=f"person{number}@example.org", first_name=f"Person {number}",
                        attendance_mode=AttendanceMode.IN_PERSON, consent=True,
                        forum_choices=["sprache"])  # fmt: skip
        person = await people.create(session, conference, data)
        person.rsvp, person.invited_at = Rsvp.ACCEPTED, PLANNED_AT
    await run_assignment(session, conference)
    if plan:
        await replan(session, conference, PLANNED_AT)
    await session.commit()
    return conference


async def _outbox(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _reminders(sessions: Sessions) -> list[Reminder]:
    async with sessions() as session:
        return list(await session.scalars(select(Reminder).order_by(Reminder.id)))


@pytest.mark.asyncio
async def test_a_tick_queues_due_reminders_and_sets_the_wakeup(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    await _conference(session)
    clock, notified = FrozenClock(berlin(3, 11, 9, 30)), []
    scheduler = ReminderScheduler(
        sessions, settings, clock=clock, on_queued=lambda: notified.append(1), batch_size=3
    )
    await scheduler.start()  # ticks at once: the opening's P7D reminders, in two batches
    try:
        assert [row.kind for row in await _outbox(sessions)] == ["reminder"] * PEOPLE
        assert notified == [1, 1]
        times = scheduler.job_times()
        assert set(times) == {"sweep", "replan", "wakeup", "retention"}
        assert scheduler.wakeup_at == times["wakeup"] == berlin(3, 11, 11)  # the round's P7D
        clock.set(berlin(3, 11, 11))
        report = await scheduler.tick("wakeup")
        assert (report.batches, report.claimed, report.queued) == (2, PEOPLE, PEOPLE)
        assert scheduler.job_times()["wakeup"] == berlin(3, 11, 13, 15)
    finally:
        await scheduler.stop()
    assert scheduler.job_times() == {}
    assert len(await _outbox(sessions)) == 2 * PEOPLE


@pytest.mark.asyncio
async def test_sweep_and_wakeup_ticking_together_queue_each_reminder_once(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    await _conference(session)
    clock = FrozenClock(berlin(3, 11, 13, 15))  # the P7D reminders of all three sessions
    sweep, wakeup = (ReminderScheduler(sessions, settings, clock=clock, batch_size=5)
                     for _ in range(2))  # fmt: skip
    first, second = await asyncio.gather(sweep.tick("sweep"), wakeup.tick("wakeup"))
    assert first.queued + second.queued == 3 * PEOPLE
    clock.set(berlin(3, 17, 13, 15))  # the P1D ones; one scheduler's two jobs at once
    third, fourth = await asyncio.gather(sweep.tick("sweep"), sweep.tick("wakeup"))
    assert third.queued + fourth.queued == 3 * PEOPLE
    outbox = await _outbox(sessions)
    queued = [row for row in await _reminders(sessions) if row.state is ReminderState.QUEUED]
    assert len(outbox) == len(queued) == 6 * PEOPLE
    assert Counter(row.dedup_key for row in outbox) == Counter(row.dedup_key for row in queued)


@pytest.mark.asyncio
async def test_stopping_ends_a_long_tick_after_the_batch_in_flight(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    await _conference(session)
    clock = FrozenClock(berlin(3, 11, 13, 15))
    scheduler = ReminderScheduler(sessions, settings, clock=clock, batch_size=1, pause=0.2)
    ticking = asyncio.create_task(scheduler.tick())
    await asyncio.sleep(0.1)
    await asyncio.wait_for(scheduler.stop(), timeout=5)
    report = await ticking
    assert 1 <= report.queued < 3 * PEOPLE
    due = [row for row in await _reminders(sessions) if row.due_at <= clock()]
    left = [row for row in due if row.state is ReminderState.PLANNED]
    assert len(left) == 3 * PEOPLE - report.queued == 3 * PEOPLE - len(await _outbox(sessions))


@pytest.mark.asyncio
async def test_after_downtime_what_is_in_time_is_queued_and_the_rest_skipped(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    conference = await _conference(session)
    # Down since before the P7D times: the opening's P7D is useless once its P1D is due;
    # the round's and the results' P7D are still in time (their P1D is not due yet).
    clock = FrozenClock(berlin(3, 17, 10))
    report = await ReminderScheduler(sessions, settings, clock=clock).tick()
    assert (report.queued, report.skipped) == (3 * PEOPLE, PEOPLE)
    opening = session_by_key(conference, "opening").id
    handled = {(row.session_id == opening, row.offset, row.state, row.note)
               for row in await _reminders(sessions) if row.handled_at is not None}  # fmt: skip
    assert handled == {
        (True, "P7D", ReminderState.SKIPPED, "zu spät"),
        (True, "P1D", ReminderState.QUEUED, ""),
        (False, "P7D", ReminderState.QUEUED, ""),
    }


@pytest.mark.asyncio
async def test_replan_now_moves_the_rows_and_the_wakeup(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    conference = await _conference(session)
    opening = session_by_key(conference, "opening")
    opening.starts_at -= timedelta(days=1)
    opening.ends_at -= timedelta(days=1)
    await session.commit()
    clock = FrozenClock(PLANNED_AT)
    scheduler = ReminderScheduler(sessions, settings, clock=clock)
    report = await scheduler.replan_now(conference.id)
    assert report is not None and (report.moved, report.planned) == (3 * PEOPLE, 0)
    assert scheduler.wakeup_at == berlin(3, 10, 9, 30)
    assert await scheduler.replan_all() == 1
    assert await scheduler.replan_now(conference.id + 1) is None
    clock.set(berlin(3, 21, 9))  # the no-show mails are out: nothing left to plan
    assert await scheduler.replan_all() == 0


@pytest.mark.asyncio
async def test_the_worker_plans_at_start_and_its_sweep_sends_what_falls_due(
    session: AsyncSession, sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    await _conference(session, plan=False)  # as the demo leaves it: nothing planned yet
    clock, stop = FrozenClock(berlin(3, 11, 9, 29)), asyncio.Event()
    settings = smtp_server.settings(settings, worker_sweep_seconds=0.1)
    worker = asyncio.create_task(run_worker(settings, stop_event=stop, clock=clock))
    try:
        for _ in range(500):
            if len(await _reminders(sessions)) == 11 * PEOPLE:
                break
            await asyncio.sleep(0.02)
        assert len(await _reminders(sessions)) == 11 * PEOPLE
        clock.set(berlin(3, 11, 9, 30))  # no timer fires for a frozen clock; the sweep looks
        await until(lambda: smtp_server.handler.count == PEOPLE, timeout=15)
        clock.set(berlin(3, 11, 11))
        await until(lambda: smtp_server.handler.count == 2 * PEOPLE, timeout=15)
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=15)
    outbox = await _outbox(sessions)
    assert {row.state for row in outbox} == {OutboxState.SENT}
    assert smtp_server.handler.message_ids() == Counter(row.message_id for row in outbox)


# --- the worker lock -------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.asyncio
async def test_on_sqlite_the_lock_is_a_no_op(engine: AsyncEngine) -> None:
    async with worker_lock(engine) as first, worker_lock(engine) as second:
        assert first.held and second.held


@POSTGRES_ONLY
@pytest.mark.asyncio
async def test_a_second_worker_waits_for_the_lock_and_takes_it_when_released(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.scheduling.lock")
    entered = asyncio.Event()

    async def second() -> None:
        async with worker_lock(engine, poll=0.05) as lock:
            assert lock.held
            entered.set()

    async with worker_lock(engine, poll=0.05) as first:
        assert first.held
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)  # ten tries
        assert not entered.is_set()
    await asyncio.wait_for(waiting, timeout=2)
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("worker.waiting_for_lock") == 1
    assert messages.count("worker.lock_held") == 2


@POSTGRES_ONLY
@pytest.mark.asyncio
async def test_when_the_holder_dies_the_lock_is_free(engine: AsyncEngine) -> None:
    taken = asyncio.Event()

    async def second() -> None:
        async with worker_lock(engine, poll=0.05):
            taken.set()

    async with worker_lock(engine, poll=0.05) as first:
        waiting = asyncio.create_task(second())
        async with engine.connect() as admin:  # as if the holder's process were killed
            holder = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            await admin.execute(text(f"SELECT pg_terminate_backend(({holder}))"))
        await asyncio.wait_for(taken.wait(), timeout=2)
        await asyncio.wait_for(first.lost.wait(), timeout=2)  # the watchdog noticed
    await waiting


@POSTGRES_ONLY
@pytest.mark.asyncio
async def test_stopping_ends_the_wait(engine: AsyncEngine) -> None:
    stop = asyncio.Event()
    async with worker_lock(engine, poll=5) as first:
        assert first.held

        async def second() -> bool:
            async with worker_lock(engine, poll=5, stop_event=stop) as lock:
                return lock.held

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.1)
        stop.set()
        assert await asyncio.wait_for(waiting, timeout=1) is False
