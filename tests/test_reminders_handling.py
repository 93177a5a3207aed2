"""Due reminders claimed and handled: once only, late or in time, after the conference."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.models import AttendanceOverride, AttendanceStatus, PresenceInterval
from orchestrator.clock import FrozenClock
from orchestrator.conferences.repository import get_by_slug, session_by_key
from orchestrator.conferences.service import import_file, plenary_room
from orchestrator.participants.assignment import run_assignment
from orchestrator.scheduling import handling
from orchestrator.scheduling.models import Reminder, ReminderState
from orchestrator.scheduling.planning import replan
from tests.conftest import SAMPLE_TOML
from tests.test_reminders import (
    BASE,
    BEFORE,
    BERLIN,
    DOMAIN,
    LATE,
    PLANNED,
    PLANNED_AT,
    QUEUED,
    SENDER,
    K,
    _add,
    _bodies,
    _outbox,
    _person,
    _reminders,
    _setup,
    _slots,
    _tick,
    berlin,
)


@pytest.mark.asyncio
async def test_no_duplicates_when_sweep_and_wakeup_fire_together(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _setup(session)
    now = berlin(3, 11, 13, 15)  # the P7D reminders of all three sessions are due

    async def worker() -> handling.HandleReport:
        async with sessions() as own:
            return await _tick(own, now)

    first, second = await asyncio.gather(worker(), worker())
    assert (first.queued + second.queued, first.skipped + second.skipped) == (13, 0)
    queued = [row for row in await _reminders(session) if row.state is QUEUED]
    assert sorted(await _outbox(session)) == sorted(row.dedup_key for row in queued)
    async with sessions() as stale:  # a handler with stale copies queues nothing new either
        rows = list(await stale.scalars(select(Reminder).where(Reminder.state == QUEUED)))
        for row in rows:
            row.state = PLANNED  # as they looked before the first pass
        await handling.handle_due(
            stale, rows, now, base_url=BASE, message_domain=DOMAIN, sender=SENDER
        )
        await stale.commit()
    assert len(await _outbox(session)) == 13
    assert (await _tick(session, now)).queued == 0


@pytest.mark.asyncio
async def test_handled_rows_are_written_as_the_loaded_copies_say(session: AsyncSession) -> None:
    conference = await _setup(session)
    results = session_by_key(conference, "results")
    results.starts_at += timedelta(days=1)  # moved, no replan yet: its P1D is planned again
    results.ends_at += timedelta(days=1)
    await session.commit()
    now = berlin(3, 18, 10, 50)
    rows = await handling.claim_due(session, now)
    report = await handling.handle_due(
        session, rows, now, base_url=BASE, message_domain=DOMAIN, sender=SENDER
    )
    assert report.queued and report.skipped and report.moved
    assert not session.dirty  # nothing left for a flush to write again
    loaded = {row.id: (row.state, row.due_at, row.handled_at, row.note) for row in rows}
    await session.commit()
    stored = {row.id: row for row in await _reminders(session) if row.id in loaded}  # reloaded
    assert {key: (r.state, r.due_at, r.handled_at, r.note) for key, r in stored.items()} == loaded


@pytest.mark.asyncio
async def test_restart_after_downtime_sends_what_is_still_useful(session: AsyncSession) -> None:
    conference = await _setup(session)
    clock = FrozenClock(datetime(2027, 3, 12, 9, 0, tzinfo=UTC))  # down over the P7D times
    report = await _tick(session, clock())
    assert (report.queued, report.skipped) == (13, 0)  # a day late, the P1D not yet due
    clock.set(berlin(3, 18, 10, 50))  # down again, back in the middle of the opening
    report = await _tick(session, clock())
    # Still useful: dora's "choose a forum" (the round starts at 11:00), the PT15M reminders
    # for the round and the P1D ones for the results plenary (its PT15M is not due yet).
    # Too late: carla's "please answer", the other P1D, the opening's PT15M and its
    # "starting now" (the opening started 80 minutes ago).
    assert (report.queued, report.skipped) == (1 + 3 + 5, 1 + 5 + 3 + 5 + 2)
    assert report.notes == {LATE: 16}
    anna, ben = await _slots(session, "anna"), await _slots(session, "ben")
    today = (await _outbox(session))[anna[("results", BEFORE, "P1D")].dedup_key]
    assert today.subject == f"Erinnerung, heute: {conference.title}"  # not "morgen": it is late
    late = ben[("opening", K.STARTING_NOW, None)]
    assert (late.state, late.note, late.handled_at) == (ReminderState.SKIPPED, LATE, clock())
    assert ben[("forums", BEFORE, "PT15M")].state is QUEUED
    clock.set(berlin(3, 18, 11, 5))
    assert (await _tick(session, clock())).queued == 1  # ben's "starting now" for the round


DST_DAYS = [  # date, (P7D, P1D, PT15M, start) in UTC for the opening at 09:30 local
    ("2027-03-28", ("2027-03-21 08:30", "2027-03-27 08:30", "2027-03-28 07:15", "07:30")),
    ("2027-10-31", ("2027-10-24 07:30", "2027-10-30 07:30", "2027-10-31 08:15", "08:30")),
]


@pytest.mark.parametrize(("day", "expected"), DST_DAYS)
@pytest.mark.asyncio
async def test_a_conference_on_the_day_summer_time_starts_or_ends(
    session: AsyncSession, tmp_path: Path, day: str, expected: tuple[str, ...]
) -> None:
    text = SAMPLE_TOML.read_text(encoding="utf-8").replace('date = "2027-03-18"', f'date = "{day}"')
    path = tmp_path / "dst.toml"
    path.write_text(text.replace('slug = "ik-heinsberg-2027"', 'slug = "ik-dst"'), "utf-8")
    await import_file(session, path)
    await session.commit()
    conference = await get_by_slug(session, "ik-dst")
    await _add(session, conference, "anna")
    await run_assignment(session, conference)
    await replan(session, conference, PLANNED_AT)
    await session.commit()
    rows = await _slots(session, "anna")
    found = [rows[("opening", BEFORE, offset)].due_at for offset in ("P7D", "P1D", "PT15M")]
    assert [f"{moment:%Y-%m-%d %H:%M}" for moment in found] == list(expected[:3])
    assert [f"{moment.astimezone(BERLIN):%H:%M}" for moment in found] == ["09:30", "09:30", "09:15"]
    assert f"{session_by_key(conference, 'opening').starts_at.astimezone(UTC):%H:%M}" == expected[3]
    await _tick(session, found[0])
    await _tick(session, found[1])  # the P1D reminder, on the eve of the change
    mail = (await _outbox(session))[rows[("opening", BEFORE, "P1D")].dedup_key]
    assert mail.subject.startswith("Erinnerung, morgen: ")
    assert "am Sonntag, " in _bodies(mail)[0] and "um 09:30 Uhr" in _bodies(mail)[0]


@pytest.mark.asyncio
async def test_after_the_conference_without_attendance_data(session: AsyncSession) -> None:
    conference = await _setup(session)
    report = await _tick(session, berlin(3, 19, 14))
    # Thank-you for anna, ben, dora (tentative) and hanna; not carla, who never answered.
    assert report.notes["keine Zusage"] == 1 and report.notes["keine Anwesenheitsdaten"] == 3
    outbox = await _outbox(session)
    assert not [row for row in outbox.values() if row.kind == "no_show"]
    thanks = {row.recipient: row for row in outbox.values() if row.kind == "thank_you"}
    assert sorted(thanks) == [f"{name}@example.org" for name in ("anna", "ben", "dora", "hanna")]
    anna = await _person(session, "anna")
    assert thanks[anna.email].subject == f"Vielen Dank für Ihre Teilnahme: {conference.title}"
    text, html, _ = _bodies(thanks[anna.email])
    assert f"{BASE}/p/{anna.token}#ergebnisse" in text
    assert f'href="{BASE}/p/{anna.token}#ergebnisse"' in html
    assert "/j/" not in text  # after the conference: no join links


@pytest.mark.asyncio
async def test_after_the_conference_attendance_decides(session: AsyncSession) -> None:
    conference = await _setup(session)
    ben, hanna = await _person(session, "ben"), await _person(session, "hanna")
    opening = session_by_key(conference, "opening")
    room = plenary_room(opening)
    assert room is not None
    session.add(PresenceInterval(conference_id=conference.id, room_id=room.id,
                                 room_name=room.name, person_id=ben.id, occupant_key=str(ben.id),
                                 joined_at=opening.starts_at, left_at=opening.ends_at))  # fmt: skip
    session.add(AttendanceOverride(person_id=hanna.id, session_id=opening.id,
                                   status=AttendanceStatus.EXCUSED, reason="krank"))  # fmt: skip
    await session.commit()
    report = await _tick(session, berlin(3, 19, 14))
    assert report.notes["teilgenommen"] == 1 and report.notes["entschuldigt"] == 1
    assert report.notes["nicht teilgenommen"] == 4  # thank-you only to ben
    outbox = (await _outbox(session)).values()
    sent = sorted((row.kind, row.recipient) for row in outbox)
    assert sent == [("no_show", "anna@example.org"), ("thank_you", "ben@example.org")]
    (no_show,) = [row for row in outbox if row.kind == "no_show"]
    assert no_show.subject.startswith("Schade, dass Sie nicht dabei sein konnten")
