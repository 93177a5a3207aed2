"""A session dropped from the programme (or cancelled by hand) is withdrawn from calendars.

SQLite and PostgreSQL: the CANCEL (same UID, SEQUENCE+1) goes to everyone who holds the
session and to nobody else, its reminders are dropped, and bringing it back re-requests it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import vobject
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.cancelling import cancel_session
from orchestrator.conferences.models import Conference, ConferenceSession, SessionStatus
from orchestrator.conferences.repository import get_by_slug, session_by_key
from orchestrator.conferences.service import ImportOutcome, import_file
from orchestrator.errors import NotFoundError
from orchestrator.followups import MailContext, after_change
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.mail.models import OutboxMessage
from orchestrator.scheduling.models import Reminder, ReminderState
from orchestrator.scheduling.planning import replan
from tests.conftest import SAMPLE_TOML, load_sample
from tests.invitation_helpers import (
    BASE,
    NOW,
    SENDER,
    add_person,
    calendar_of,
    conference_with_people,
    events_of,
    ics_of,
    mime_part,
    outbox_rows,
    parse_mail,
    text_of,
)

pytestmark = pytest.mark.asyncio
MAIL = MailContext(base_url=BASE, sender=SENDER)
EVERYONE = ["anna@example.org", "ben@example.org", "carla@example.org", "dora@example.org"]


def without_session(tmp_path: Path, key: str) -> Path:
    """The sample programme with the session `key` left out."""
    text = SAMPLE_TOML.read_text(encoding="utf-8")
    start = text.index(f'[[sessions]]\nkey = "{key}"')
    end = text.index("[[", start + 5)
    path = tmp_path / f"without-{key}.toml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    return path


async def reimport(session: AsyncSession, path: Path) -> ImportOutcome:
    """A re-import as the CLI and the API run it: import, then the follow-ups, one commit."""
    outcome = await import_file(session, path)
    await after_change(session, outcome.conference, MAIL, NOW)
    await session.commit()
    return outcome


async def invited_world(session: AsyncSession) -> Conference:
    """Four invited people with their reminders planned, and Emil, added later, not invited."""
    conference = await conference_with_people(session, invite=True)
    await add_person(session, conference, "emil", first_name="Emil")
    await replan(session, conference, NOW)
    await session.commit()
    return conference


async def entries_for(session: AsyncSession, item: ConferenceSession) -> dict[str, CalendarEntry]:
    """The calendar entries of one session, by the holder's address."""
    from orchestrator.participants.models import Person

    statement = (
        select(Person.email, CalendarEntry)
        .join(Person, Person.id == CalendarEntry.person_id)
        .where(CalendarEntry.session_id == item.id)
        .execution_options(populate_existing=True)
    )
    return {email: entry for email, entry in (await session.execute(statement)).all()}


async def reminder_states(session: AsyncSession, session_id: int) -> list[ReminderState]:
    statement = select(Reminder.state).where(Reminder.session_id == session_id)
    return sorted(await session.scalars(statement))


async def outbox_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()


def check_cancel(row: OutboxMessage, uid: str, sequence: int, title: str) -> None:
    """One CANCEL with the one event, read by icalendar and by vobject."""
    message = parse_mail(row)
    assert mime_part(message, "text/calendar").get_param("method") == "CANCEL"
    assert calendar_of(message)["METHOD"] == "CANCEL"
    (event,) = events_of(message)
    assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (
        uid,
        sequence,
        "CANCELLED",
    )
    other = vobject.readOne(ics_of(message).decode("utf-8"))
    assert other.method.value == "CANCEL"
    (vevent,) = other.vevent_list
    assert (vevent.uid.value, vevent.sequence.value, vevent.status.value) == (
        uid,
        str(sequence),
        "CANCELLED",
    )
    assert message["Subject"].startswith(("Termin entfällt:", "Session cancelled:"))
    assert title in text_of(message, "plain")


async def test_dropped_plenary_is_cancelled_for_everyone_who_had_it(
    session: AsyncSession, tmp_path: Path
) -> None:
    conference = await invited_world(session)
    results = session_by_key(conference, "results")
    held = {
        email: (e.uid, e.sequence) for email, e in (await entries_for(session, results)).items()
    }
    assert sorted(held) == EVERYONE and {seq for _, seq in held.values()} == {0}
    assert ReminderState.PLANNED in await reminder_states(session, results.id)
    before = await outbox_count(session)

    outcome = await reimport(session, without_session(tmp_path, "results"))

    assert "Sitzung results abgesagt" in outcome.changes
    conference = await get_by_slug(session, conference.slug)
    results = session_by_key(conference, "results")  # kept, as cancelled
    assert (results.status, results.sequence) == (SessionStatus.CANCELLED, 1)
    rows = (await outbox_rows(session))[before:]
    assert sorted(row.recipient for row in rows) == EVERYONE  # not Emil, one each
    assert {row.kind for row in rows} == {"cancellation"}
    for row in rows:
        uid, sequence = held[row.recipient]
        check_cancel(row, uid, sequence + 1, results.title)
    entries = await entries_for(session, results)
    assert {(e.status, e.sequence) for e in entries.values()} == {(EntryStatus.CANCELLED, 1)}
    assert set(await reminder_states(session, results.id)) == {ReminderState.CANCELLED}
    opening = session_by_key(conference, "opening")
    assert ReminderState.PLANNED in await reminder_states(session, opening.id)

    again = await reimport(session, without_session(tmp_path, "results"))
    assert not any("results" in change for change in again.changes)
    assert await outbox_count(session) == before + len(EVERYONE)  # nothing twice


async def test_session_back_in_the_file_is_requested_again(
    session: AsyncSession, tmp_path: Path
) -> None:
    conference = await invited_world(session)
    await reimport(session, without_session(tmp_path, "results"))
    before = await outbox_count(session)

    outcome = await reimport(session, SAMPLE_TOML)

    assert "Sitzung results wieder angesetzt" in outcome.changes
    conference = await get_by_slug(session, conference.slug)
    results = session_by_key(conference, "results")
    assert (results.status, results.sequence) == (SessionStatus.SCHEDULED, 2)
    entries = await entries_for(session, results)
    assert {(e.status, e.sequence) for e in entries.values()} == {(EntryStatus.REQUESTED, 2)}
    rows = (await outbox_rows(session))[before:]
    assert sorted(row.recipient for row in rows) == EVERYONE
    for row in rows:
        assert row.kind == "update"
        message = parse_mail(row)
        assert calendar_of(message)["METHOD"] == "REQUEST"
        (event,) = events_of(message)  # only the session that came back
        assert (str(event["UID"]), event["SEQUENCE"]) == (entries[row.recipient].uid, 2)
        assert str(event.get("STATUS", "CONFIRMED")) != "CANCELLED"
        assert event.decoded("DTSTART") == results.starts_at
    assert ReminderState.PLANNED in await reminder_states(session, results.id)
    assert (await reimport(session, SAMPLE_TOML)).changes == []
    assert await outbox_count(session) == before + len(EVERYONE)


async def test_session_nobody_received_is_simply_deleted(
    session: AsyncSession, tmp_path: Path
) -> None:
    conference = await load_sample(session)
    await add_person(session, conference, "noch-nicht-eingeladen")
    await session.commit()
    outcome = await reimport(session, without_session(tmp_path, "results"))
    assert "Sitzung results entfernt" in outcome.changes
    keys = await session.scalars(
        select(ConferenceSession.key).where(ConferenceSession.conference_id == conference.id)
    )
    assert sorted(keys) == ["forums", "opening"]
    assert await outbox_count(session) == 0


async def test_cancelled_round_reaches_only_those_with_a_seat(session: AsyncSession) -> None:
    conference = await invited_world(session)
    forums = session_by_key(conference, "forums")
    held = {email: (e.uid, e.sequence) for email, e in (await entries_for(session, forums)).items()}
    assert sorted(held) == EVERYONE[:3]  # Dora has no forum, Emil no invitation
    before = await outbox_count(session)

    await cancel_session(session, conference.slug, "forums")
    await after_change(session, conference, MAIL, NOW)
    await session.commit()

    rows = (await outbox_rows(session))[before:]
    assert sorted(row.recipient for row in rows) == EVERYONE[:3]
    for row in rows:
        uid, sequence = held[row.recipient]
        check_cancel(row, uid, sequence + 1, forums.title)
    assert set(await reminder_states(session, forums.id)) == {ReminderState.CANCELLED}

    _, again = await cancel_session(session, conference.slug, "forums")  # idempotent
    await after_change(session, conference, MAIL, NOW)
    await session.commit()
    assert (again.status, again.sequence) == (SessionStatus.CANCELLED, 1)
    assert await outbox_count(session) == before + 3


async def test_cancelling_an_unknown_session_is_not_found(session: AsyncSession) -> None:
    conference = await load_sample(session)
    with pytest.raises(NotFoundError, match="gibtsnicht"):
        await cancel_session(session, conference.slug, "gibtsnicht")
    with pytest.raises(NotFoundError):
        await cancel_session(session, f"x-{uuid.uuid4().hex[:8]}", "results")
