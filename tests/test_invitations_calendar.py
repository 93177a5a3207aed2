"""Calendar entries on SQLite and PostgreSQL: locations, moves and cancellations, SEQUENCE."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import SessionStatus
from orchestrator.conferences.repository import session_by_key
from orchestrator.conferences.service import import_file
from orchestrator.invitations.desired import desired_events
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.invitations.service import sync_changes
from orchestrator.participants import repository as participants_repository
from orchestrator.participants.assignment import set_override
from tests.conftest import SAMPLE_TOML
from tests.invitation_helpers import (
    BASE,
    DOMAIN,
    calendar_of,
    conference_with_people,
    entries_of,
    events_of,
    mime_part,
    outbox_rows,
    parse_mail,
    person_by_email,
    queue_mails,
    text_of,
)


@pytest.mark.asyncio
async def test_location_follows_the_attendance_mode(session: AsyncSession) -> None:
    conference = await conference_with_people(session, invite=True)
    rows = {row.recipient: row for row in await outbox_rows(session)}
    forum_round = session_by_key(conference, "forums")

    def round_event(address: str) -> icalendar.Component:
        for event in events_of(parse_mail(rows[address])):
            if event.decoded("DTSTART") == forum_round.starts_at:
                return event
        raise AssertionError(address)

    anna, ben, carla = (round_event(f"{n}@example.org") for n in ("anna", "ben", "carla"))
    assert str(anna["SUMMARY"]).startswith("Forum: Sprache")
    assert str(anna["LOCATION"]) == f"{conference.venue}, Sitzungssaal 1"
    assert "/j/" not in str(anna["DESCRIPTION"])  # in person: no join link in the calendar
    assert str(ben["LOCATION"]).startswith(f"{BASE}/j/")
    assert str(ben["DESCRIPTION"]).count(f"{BASE}/j/") == 1
    assert str(carla["LOCATION"]).startswith(f"{conference.venue}, Raum 2.16 – oder online: ")
    assert "Leitthema: Integration in Ausbildung und Arbeit" in str(carla["DESCRIPTION"])
    person_id = (await person_by_email(session, "carla@example.org")).id
    session.expunge_all()  # run_assignment inserted rows behind the ORM's back: load afresh
    loaded = await participants_repository.get(session, conference.id, person_id)
    stored = {(e.session_id, e.forum_id): e for e in await entries_of(session, loaded)}
    desired = desired_events(conference, loaded, BASE, DOMAIN)
    assert [(d.key, d.event.uid, d.fingerprint) for d in desired] == [
        (key, e.uid, e.fingerprint) for key, e in stored.items()]  # fmt: skip


@pytest.mark.asyncio
async def test_moved_plenary_updates_everyone_with_the_same_uid(
    session: AsyncSession, tmp_path: Path
) -> None:
    conference = await conference_with_people(session, invite=True)
    moved = tmp_path / "moved.toml"  # the results plenary 15 minutes later, by re-import
    text = SAMPLE_TOML.read_text(encoding="utf-8")
    moved.write_text(text.replace('start = "13:15"', 'start = "13:30"'), encoding="utf-8")
    await import_file(session, moved)  # updates the loaded conference in place
    await session.commit()
    report = await queue_mails(session, conference, sync_changes)
    assert (report.people, report.queued, report.updated, report.cancelled) == (4, 4, 4, 0)
    results = session_by_key(conference, "results")
    for row in await outbox_rows(session, "update"):
        message = parse_mail(row)
        person = await person_by_email(session, row.recipient)
        (event,) = events_of(message)
        (entry,) = [e for e in await entries_of(session, person) if e.session_id == results.id]
        assert (str(event["UID"]), event["SEQUENCE"], entry.sequence) == (entry.uid, 1, 1)
        assert event.decoded("DTSTART") == results.starts_at
        method = mime_part(message, "text/calendar").get_param("method")
        assert (calendar_of(message)["METHOD"], method) == ("REQUEST", "REQUEST")
        assert message["Subject"].startswith(("Geänderte Termine:", "Changed sessions:"))
    assert (await queue_mails(session, conference, sync_changes)).queued == 0


@pytest.mark.asyncio
async def test_round_moved_then_plenary_cancelled(session: AsyncSession) -> None:
    """A moved round updates only people with a seat; a cancelled plenary cancels for all."""
    conference = await conference_with_people(session, invite=True)
    forum_round = session_by_key(conference, "forums")
    forum_round.starts_at += timedelta(minutes=15)
    forum_round.sequence += 1
    await session.commit()
    report = await queue_mails(session, conference, sync_changes)
    assert (report.people, report.queued, report.updated) == (3, 3, 1 + 1 + 1)
    recipients = sorted(row.recipient for row in await outbox_rows(session, "update"))
    assert recipients == ["anna@example.org", "ben@example.org", "carla@example.org"]
    for row in await outbox_rows(session, "update"):
        (event,) = events_of(parse_mail(row))
        assert event["SEQUENCE"] == 1 and str(event["SUMMARY"]).startswith("Forum: ")
    results = session_by_key(conference, "results")
    results.status = SessionStatus.CANCELLED
    await session.commit()
    report = await queue_mails(session, conference, sync_changes)  # a plenary: everybody
    assert (report.people, report.queued, report.cancelled, report.updated) == (4, 4, 4, 0)
    for row in await outbox_rows(session, "cancellation"):
        (event,) = events_of(parse_mail(row))
        assert event["SEQUENCE"] == 1 and str(event["STATUS"]) == "CANCELLED"
        assert event.decoded("DTSTART") == results.starts_at
    statement = select(CalendarEntry).where(CalendarEntry.session_id == results.id)
    assert {e.status for e in await session.scalars(statement)} == {EntryStatus.CANCELLED}
    assert (await queue_mails(session, conference, sync_changes)).queued == 0


@pytest.mark.asyncio
async def test_forum_move_cancels_the_old_and_requests_the_new(session: AsyncSession) -> None:
    conference = await conference_with_people(session, invite=True)
    anna = await person_by_email(session, "anna@example.org")
    (old,) = [e for e in await entries_of(session, anna) if e.forum_id is not None]
    await set_override(session, conference, anna.id, "werte")
    await session.commit()
    report = await queue_mails(session, conference, sync_changes)
    assert (report.people, report.queued, report.updated, report.cancelled) == (1, 2, 1, 1)
    (cancel,) = await outbox_rows(session, "cancellation")
    (update,) = await outbox_rows(session, "update")
    assert cancel.recipient == update.recipient == "anna@example.org"
    cancelled = parse_mail(cancel)
    method = mime_part(cancelled, "text/calendar").get_param("method")
    assert (calendar_of(cancelled)["METHOD"], method) == ("CANCEL", "CANCEL")
    (event,) = events_of(cancelled)
    assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (old.uid, 1, "CANCELLED")
    assert cancelled["Subject"].startswith("Termin entfällt")
    assert "Sprache" in text_of(cancelled, "plain")
    (new,) = events_of(parse_mail(update))
    assert str(new["UID"]) != old.uid and new["SEQUENCE"] == 0
    assert str(new["SUMMARY"]) == "Forum: Wertevermittlung und Zusammenleben"
    entries = {e.uid: e for e in await entries_of(session, anna)}
    assert entries[old.uid].status is EntryStatus.CANCELLED and entries[old.uid].sequence == 1
    assert entries[str(new["UID"])].status is EntryStatus.REQUESTED
    assert (await queue_mails(session, conference, sync_changes)).queued == 0


def test_fingerprint_ignores_the_time_zone_an_instant_is_written_in() -> None:
    """An import in-process carries Berlin times, the database UTC: same instant, same hash."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from orchestrator.invitations.desired import _fingerprint
    from orchestrator.invitations.ics import CalendarEvent

    berlin = datetime(2027, 3, 18, 13, 30, tzinfo=ZoneInfo("Europe/Berlin"))

    def event(start: datetime) -> CalendarEvent:
        return CalendarEvent(
            uid="u@x.org",
            sequence=0,
            start=start,
            end=start.replace(hour=start.hour + 1),
            summary="S",
            description="D",
            location="L",
            url="https://x",
        )

    assert _fingerprint(event(berlin)) == _fingerprint(event(berlin.astimezone(UTC)))
