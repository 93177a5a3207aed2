"""The reminder plan with an injected clock, on SQLite and PostgreSQL; shared helpers.

Handling due reminders is tested in test_reminders_handling.py, the mails themselves in
test_reminders_mails.py; both use the people and helpers defined here.
"""

from __future__ import annotations

import email
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Conference, ConferenceSession
from orchestrator.conferences.repository import session_by_key
from orchestrator.mail.models import OutboxMessage
from orchestrator.participants import service as people
from orchestrator.participants.assignment import run_assignment, set_override
from orchestrator.participants.models import AttendanceMode, Language, Person, Role, Rsvp
from orchestrator.participants.schemas import PersonIn
from orchestrator.scheduling import handling
from orchestrator.scheduling.models import Reminder, ReminderKind, ReminderState
from orchestrator.scheduling.planning import NOT_WANTED, Offset, before, parse_offset, replan
from tests.conftest import load_sample

BASE, DOMAIN = "http://orchestrator.test", "orchestrator.test"
SENDER = "Konferenz-Orchestrator <noreply@orchestrator.test>"
BERLIN = ZoneInfo("Europe/Berlin")
PLANNED_AT = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
K = ReminderKind
BEFORE, LATE = K.BEFORE_SESSION, "zu spät"
PLANNED, QUEUED = ReminderState.PLANNED, ReminderState.QUEUED
DE, EN, ONLINE, THERE, OPEN = (Language.DE, Language.EN, AttendanceMode.ONLINE,
                               AttendanceMode.IN_PERSON, AttendanceMode.UNDECIDED)  # fmt: skip
PEOPLE: dict[str, tuple[Language, AttendanceMode, list[str], Rsvp, Role]] = {
    "anna": (DE, THERE, ["sprache"], Rsvp.ACCEPTED, Role.PARTICIPANT),
    "ben": (EN, ONLINE, ["werte"], Rsvp.ACCEPTED, Role.PARTICIPANT),
    "carla": (DE, OPEN, ["bildung"], Rsvp.NEEDS_ACTION, Role.PARTICIPANT),
    "dora": (EN, ONLINE, [], Rsvp.TENTATIVE, Role.PARTICIPANT),
    "emil": (DE, ONLINE, ["arbeit"], Rsvp.DECLINED, Role.PARTICIPANT),
    "frida": (DE, ONLINE, ["sprache"], Rsvp.ACCEPTED, Role.PARTICIPANT),  # consent withdrawn
    "gustav": (DE, THERE, [], Rsvp.ACCEPTED, Role.ROOM_SYSTEM),
    "hanna": (DE, OPEN, [], Rsvp.ACCEPTED, Role.ORGANISER),
}
# 3 sessions x 3 offsets for people with a seat, 2 x 3 without (dora, hanna); "starting now"
# for the online people; "please answer" to carla, "choose a forum" to dora; a thank-you for
# everyone still coming, the no-show follow-up for those who accepted. Emil declined, Frida
# withdrew consent, Gustav is a room system: nothing for them.
DEFAULT_PLAN = {BEFORE: 9 + 9 + 9 + 6 + 6, K.STARTING_NOW: 3 + 2, K.RSVP_NEEDED: 1,
                K.CHOOSE_FORUM: 1, K.THANK_YOU: 5, K.NO_SHOW: 3}  # fmt: skip


def berlin(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=BERLIN)


async def _add(session: AsyncSession, conference: Conference, local: str) -> Person:
    language, mode, choices, rsvp, role = PEOPLE[local]
    data = PersonIn(email=f"{local}@example.org", first_name=local.title(), last_name="Beispiel",
                    language=language, attendance_mode=mode, forum_choices=choices, role=role,
                    consent=local != "frida")  # fmt: skip
    person = await people.create(session, conference, data)
    person.rsvp, person.invited_at = rsvp, PLANNED_AT
    if local == "frida":  # agreed once, then withdrew: consent_at marks the withdrawal
        person.consent_at = PLANNED_AT
    return person


async def _setup(session: AsyncSession, names: tuple[str, ...] = tuple(PEOPLE)) -> Conference:
    """The sample conference with the people above, balanced and planned; committed."""
    conference = await load_sample(session)
    for local in names:
        await _add(session, conference, local)
    await run_assignment(session, conference)
    await replan(session, conference, PLANNED_AT)
    await session.commit()
    return conference


async def _tick(session: AsyncSession, now: datetime, limit: int = 500) -> handling.HandleReport:
    """One scheduler pass as the worker runs it: claim, handle, commit."""
    claimed = await handling.claim_due(session, now, limit)
    report = await handling.handle_due(
        session, claimed, now, base_url=BASE, message_domain=DOMAIN, sender=SENDER
    )
    await session.commit()
    return report


async def _reminders(session: AsyncSession, person: Person | None = None) -> list[Reminder]:
    statement = select(Reminder).execution_options(populate_existing=True)
    if person is not None:
        statement = statement.where(Reminder.person_id == person.id)
    return list(await session.scalars(statement.order_by(Reminder.id)))


async def _person(session: AsyncSession, local: str) -> Person:
    statement = select(Person).where(Person.email == f"{local}@example.org")
    return (await session.scalars(statement)).one()


async def _slots(session: AsyncSession, local: str) -> dict[tuple[Any, ...], Reminder]:
    """A person's rows by (session key or None, kind, offset)."""
    rows = await _reminders(session, await _person(session, local))
    keys = dict((await session.execute(select(ConferenceSession.id, ConferenceSession.key))).all())
    return {(keys.get(row.session_id or -1), row.kind, row.offset): row for row in rows}


async def _outbox(session: AsyncSession) -> dict[str, OutboxMessage]:
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
    return {row.dedup_key: row for row in rows}


def _bodies(row: OutboxMessage) -> tuple[str, str, EmailMessage]:
    message = email.message_from_bytes(row.body, policy=policy.default)
    parts = {part.get_content_type(): part for part in message.walk()}
    return str(parts["text/plain"].get_content()), str(parts["text/html"].get_content()), message


def test_offsets_split_into_calendar_days_and_exact_time() -> None:
    assert parse_offset("P7D") == parse_offset("P1W") == Offset(7, timedelta())
    assert parse_offset("PT15M") == Offset(0, timedelta(minutes=15))
    assert parse_offset("P1DT2H") == Offset(1, timedelta(hours=2))
    with pytest.raises(ValueError, match="negative"):
        parse_offset("-P1D")
    with pytest.raises(ValueError):
        parse_offset("morgen")


def test_calendar_days_keep_wall_time_and_hours_are_exact_across_dst() -> None:
    start, day, hours = berlin(3, 28, 9, 30), parse_offset("P1D"), parse_offset("PT24H")
    assert before(start, day, BERLIN) == datetime(2027, 3, 27, 8, 30, tzinfo=UTC)  # 23 h
    assert before(start, hours, BERLIN) == datetime(2027, 3, 27, 7, 30, tzinfo=UTC)
    # 02:30 on 28 March does not exist: read with the winter offset, i.e. 03:30 summer time.
    skipped = before(berlin(3, 29, 2, 30), day, BERLIN)
    assert skipped == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert f"{skipped.astimezone(BERLIN):%H:%M %Z}" == "03:30 CEST"
    # 02:30 on 31 October happens twice: the first time (summer time) counts.
    assert before(berlin(11, 1, 2, 30), day, BERLIN) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


@pytest.mark.asyncio
async def test_default_plan_for_the_sample_conference(session: AsyncSession) -> None:
    conference = await _setup(session)
    rows = await _reminders(session)
    assert len(rows) == 54 and Counter(row.kind for row in rows) == DEFAULT_PLAN
    assert {row.state for row in rows} == {PLANNED}
    anna = await _slots(session, "anna")
    assert {slot: row.due_at for slot, row in anna.items()} == {
        ("opening", BEFORE, "P7D"): berlin(3, 11, 9, 30),
        ("opening", BEFORE, "P1D"): berlin(3, 17, 9, 30),
        ("opening", BEFORE, "PT15M"): berlin(3, 18, 9, 15),
        ("forums", BEFORE, "P7D"): berlin(3, 11, 11),
        ("forums", BEFORE, "P1D"): berlin(3, 17, 11),
        ("forums", BEFORE, "PT15M"): berlin(3, 18, 10, 45),
        ("results", BEFORE, "P7D"): berlin(3, 11, 13, 15),
        ("results", BEFORE, "P1D"): berlin(3, 17, 13, 15),
        ("results", BEFORE, "PT15M"): berlin(3, 18, 13),
        (None, K.THANK_YOU, None): berlin(3, 18, 16),
        (None, K.NO_SHOW, None): berlin(3, 19, 14),
    }
    p1d = anna[("opening", BEFORE, "P1D")].due_at
    assert (p1d.tzinfo, p1d.hour) == (UTC, 8)  # stored in UTC: 09:30 CET is 08:30 UTC
    ben = await _slots(session, "ben")
    starts = [row.due_at for (_, kind, _), row in ben.items() if kind is K.STARTING_NOW]
    assert starts == [berlin(3, 18, 9, 30), berlin(3, 18, 11), berlin(3, 18, 13, 15)]
    carla, dora = await _slots(session, "carla"), await _slots(session, "dora")
    assert carla[(None, K.RSVP_NEEDED, None)].due_at == berlin(3, 15, 9, 30)
    assert dora[("forums", K.CHOOSE_FORUM, None)].due_at == berlin(3, 13, 11)
    for name in ("emil", "frida", "gustav"):
        assert await _slots(session, name) == {}
    again = await replan(session, conference, PLANNED_AT)
    assert (again.planned, again.moved, again.cancelled) == (0, 0, 0)
    assert await handling.next_due_at(session) == berlin(3, 11, 9, 30)
    assert await handling.claim_due(session, berlin(3, 11, 9, 29)) == []
    await session.rollback()
    assert (await _tick(session, berlin(3, 11, 9, 30), limit=2)).queued == 2  # in batches
    assert (await _tick(session, berlin(3, 11, 9, 30), limit=10)).queued == 3
    assert await handling.next_due_at(session) == berlin(3, 11, 11)


@pytest.mark.asyncio
async def test_moving_a_session_replans_and_keeps_history(session: AsyncSession) -> None:
    conference = await _setup(session)
    clock = FrozenClock(berlin(3, 11, 9, 30))
    assert (await _tick(session, clock())).queued == 5  # the P7D reminders of the opening
    opening = session_by_key(conference, "opening")
    opening.starts_at += timedelta(minutes=30)
    opening.ends_at += timedelta(minutes=30)
    clock.advance(timedelta(hours=1))
    report = await replan(session, conference, clock())
    await session.commit()
    # P1D and PT15M for five people, "starting now" for two, and carla's "please answer".
    assert (report.planned, report.moved, report.cancelled) == (0, 5 + 5 + 2 + 1, 0)
    anna = await _slots(session, "anna")
    assert anna[("opening", BEFORE, "P1D")].due_at == berlin(3, 17, 10)
    assert anna[("opening", BEFORE, "PT15M")].due_at == berlin(3, 18, 9, 45)
    sent = anna[("opening", BEFORE, "P7D")]
    assert (sent.state, sent.due_at) == (QUEUED, berlin(3, 11, 9, 30))  # history stays
    assert len(await _outbox(session)) == 5
    opening.starts_at += timedelta(days=1)  # moved again, and the replan has not run yet:
    opening.ends_at += timedelta(days=1)  # handling notices and plans the rows again
    await session.commit()
    assert (await _tick(session, berlin(3, 17, 10))).moved == 5
    row = (await _slots(session, "anna"))[("opening", BEFORE, "P1D")]
    assert (row.state, row.due_at, row.handled_at) == (PLANNED, berlin(3, 18, 10), None)


@pytest.mark.asyncio
async def test_declining_cancels_future_rows_and_accepting_plans_them_again(
    session: AsyncSession,
) -> None:
    conference = await _setup(session)
    await _tick(session, berlin(3, 11, 9, 30))
    carla = await _person(session, "carla")
    carla.rsvp = Rsvp.DECLINED
    report = await replan(session, conference, berlin(3, 12, 8), [carla.id])
    assert (report.planned, report.moved, report.cancelled) == (0, 0, 10)
    rows = await _reminders(session, carla)
    assert Counter(row.state for row in rows) == {ReminderState.CANCELLED: 10, QUEUED: 1}
    assert {row.note for row in rows if row.state is ReminderState.CANCELLED} == {"abgesagt"}
    assert len([row for row in await _reminders(session) if row.state is PLANNED]) == 54 - 15
    carla.rsvp = Rsvp.ACCEPTED  # changed her mind: the rows still to come are planned again
    report = await replan(session, conference, berlin(3, 12, 8), [carla.id])
    await session.commit()
    # P1D and PT15M, the thank-you and (new) the no-show follow-up; not the P7D ones of the
    # round and the results (their time has passed), nor "please answer".
    assert (report.planned, report.cancelled) == (6 + 1 + 1, 0)
    kinds = Counter(row.kind for row in await _reminders(session, carla) if row.state is PLANNED)
    assert kinds == {BEFORE: 6, K.THANK_YOU: 1, K.NO_SHOW: 1}


@pytest.mark.asyncio
async def test_losing_a_seat_or_being_removed(session: AsyncSession) -> None:
    conference = await _setup(session)
    anna, dora = await _person(session, "anna"), await _person(session, "dora")
    await set_override(session, conference, anna.id, None)  # onto the waiting list
    report = await replan(session, conference, PLANNED_AT, [anna.id])
    assert (report.planned, report.cancelled) == (0, 3)  # no "choose a forum": she chose
    row = (await _slots(session, "anna"))[("forums", BEFORE, "P1D")]
    assert (row.state, row.note) == (ReminderState.CANCELLED, NOT_WANTED)
    await people.delete(session, conference, dora.id)  # removed: her rows go with her
    await session.commit()
    assert await _reminders(session, dora) == []


@pytest.mark.asyncio
async def test_consent_withdrawal_stops_mail(session: AsyncSession) -> None:
    conference = await _setup(session)
    anna = await _person(session, "anna")
    anna.consent, anna.consent_at = False, berlin(3, 10, 12)  # withdrawn, no replan yet
    await session.commit()
    report = await _tick(session, berlin(3, 11, 9, 30))
    assert (report.queued, report.skipped, report.notes) == (4, 1, {"Einwilligung widerrufen": 1})
    assert all(row.recipient != anna.email for row in (await _outbox(session)).values())
    assert (await replan(session, conference, berlin(3, 11, 9, 31))).cancelled == 10
    assert {row.note for row in await _reminders(session, anna)} == {"Einwilligung widerrufen"}
