"""Invitation mails and calendar changes, on SQLite and PostgreSQL: MIME, headers, iCalendar."""

from __future__ import annotations

import email
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import httpx
import icalendar
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, SessionStatus
from orchestrator.conferences.repository import session_by_key
from orchestrator.conferences.service import import_file
from orchestrator.config import Settings
from orchestrator.invitations.desired import desired_events
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.invitations.service import Report, queue_invitations, sync_changes
from orchestrator.mail.models import OutboxMessage
from orchestrator.mail.outbox import counts_by_state
from orchestrator.mail.rendering import KINDS, LANGUAGES, render
from orchestrator.participants import repository as participants_repository
from orchestrator.participants import service as people
from orchestrator.participants.assignment import run_assignment, set_override
from orchestrator.participants.models import AttendanceMode, Language, Person
from orchestrator.participants.schemas import PersonIn
from orchestrator.web.app import create_app
from tests.conftest import API_KEY, SAMPLE_TOML, load_sample
from tests.live import serve

BASE = "http://orchestrator.test"
DOMAIN = "orchestrator.test"
SENDER = "Konferenz-Orchestrator <noreply@orchestrator.test>"
NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
HOSTILE = 'Ömer "O\'Connor" <script>'
Step = Callable[..., Awaitable[Report]]


async def _person(
    session: AsyncSession, conference: Conference, local: str, **fields: Any
) -> Person:
    data = PersonIn(email=f"{local}@example.org", **fields)
    return await people.create(session, conference, data)


PEOPLE = {  # local part of the address: language, attendance mode, forum choices
    "anna": (Language.DE, AttendanceMode.IN_PERSON, ["sprache"]),
    "ben": (Language.EN, AttendanceMode.ONLINE, ["werte"]),
    "carla": (Language.DE, AttendanceMode.UNDECIDED, ["bildung"]),
    "dora": (Language.EN, AttendanceMode.UNDECIDED, []),  # no forum: plenaries only
}


async def _setup(session: AsyncSession, *, invite: bool = False) -> Conference:
    """The sample conference with four people, balanced (and invited); committed."""
    conference = await load_sample(session)
    for local, (language, mode, choices) in PEOPLE.items():
        await _person(session, conference, local, first_name=local.title(), last_name="Beispiel",
                      language=language, attendance_mode=mode, forum_choices=choices)  # fmt: skip
    await run_assignment(session, conference)
    await session.commit()
    if invite:
        await _queue(session, conference)
    return conference


async def _queue(
    session: AsyncSession, conference: Conference, step: Step = queue_invitations
) -> Report:
    """Run queue_invitations (or sync_changes) as the CLI or API would, then commit."""
    report = await step(
        session, conference, base_url=BASE, message_domain=DOMAIN, sender=SENDER, now=NOW
    )
    await session.commit()
    return report


async def _rows(session: AsyncSession, kind: str | None = None) -> list[OutboxMessage]:
    kinds = [kind] if kind else list(KINDS)
    statement = select(OutboxMessage).where(OutboxMessage.kind.in_(kinds))
    return list(await session.scalars(statement.order_by(OutboxMessage.id)))


async def _by_email(session: AsyncSession, address: str) -> Person:
    return (await session.scalars(select(Person).where(Person.email == address))).one()


async def _entries(session: AsyncSession, person: Person) -> list[CalendarEntry]:
    statement = select(CalendarEntry).where(CalendarEntry.person_id == person.id)
    return list(await session.scalars(statement.order_by(CalendarEntry.id)))


def _parse(row: OutboxMessage) -> EmailMessage:
    return email.message_from_bytes(row.body, policy=policy.default)


def _tree(part: EmailMessage) -> str:
    """The MIME tree as text: type(child,child)."""
    children = ",".join(_tree(child) for child in part.iter_parts())  # type: ignore[arg-type]
    return f"{part.get_content_type()}({children})" if children else part.get_content_type()


def _part(message: EmailMessage, content_type: str) -> EmailMessage:
    found = [part for part in message.walk() if part.get_content_type() == content_type]
    assert len(found) == 1, content_type
    return found[0]


def _text(message: EmailMessage, subtype: str) -> str:
    return str(_part(message, f"text/{subtype}").get_content())


def _calendar(message: EmailMessage) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(_ics(message))


def _ics(message: EmailMessage) -> bytes:
    return cast(bytes, _part(message, "text/calendar").get_payload(decode=True))


def _events(message: EmailMessage) -> list[icalendar.Component]:
    return list(_calendar(message).walk("VEVENT"))


def _context(name: str = HOSTILE) -> dict[str, Any]:
    start = datetime(2027, 3, 18, 9, 30, tzinfo=UTC)
    item = {"title": "Begrüßung", "forum": "", "start": start, "end": start + timedelta(hours=1),
            "place": "Kreishaus", "join_url": f"{BASE}/j/tok/room-1", "changed": True}  # fmt: skip
    conference = {"title": "Integrationskonferenz\r\nBcc: victim@example.org\x00",
                  "lead_theme": "Arbeit", "organiser": "KI Heinsberg",
                  "organiser_email": "ki@example.org"}  # fmt: skip
    return {"name": name, "conference": conference, "timezone": "Europe/Berlin",
            "personal_url": f"{BASE}/p/tok", "agenda": [item], "cancelled": [item]}  # fmt: skip


WORDS = {"de": ("Guten Tag", "Datenschutz", "Ihre persönliche Seite"),
         "en": ("Hello", "Privacy", "Your personal page")}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_renders_in_its_language(kind: str, language: str) -> None:
    rendered = render(kind, language, _context())
    other = "en" if language == "de" else "de"
    assert rendered.subject and "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.subject.endswith(": Integrationskonferenz Bcc: victim@example.org")
    for body in (rendered.text, rendered.html):
        assert all(word in body for word in WORDS[language])
        assert not any(word in body for word in WORDS[other])
        assert f"{BASE}/p/tok" in body and f"{BASE}/j/tok/room-1" in body
    assert f'<html lang="{language}">' in rendered.html
    assert "&lt;script&gt;" in rendered.html and "<script>" not in rendered.html
    assert HOSTILE in rendered.text  # plain text is not escaped


@pytest.mark.asyncio
async def test_invitation_mime_structure_and_headers(session: AsyncSession) -> None:
    conference = await _setup(session)
    report = await _queue(session, conference)
    assert (report.people, report.queued, report.updated) == (4, 4, 3 + 3 + 3 + 2)
    again = await _queue(session, conference)  # queued twice: nothing new
    assert (again.people, again.queued) == (0, 0)
    assert (await _queue(session, conference, sync_changes)).queued == 0
    assert (await counts_by_state(session, conference.id, "invitation"))["queued"] == 4
    rows = {row.recipient: row for row in await _rows(session)}
    message = _parse(rows["anna@example.org"])
    alternative = "multipart/alternative(text/plain,text/html,text/calendar)"
    assert _tree(message) == f"multipart/mixed({alternative},application/ics)"
    assert message["Message-ID"] == rows["anna@example.org"].message_id
    assert message["Date"].datetime == NOW and message["From"] == SENDER
    (to,) = message["To"].addresses
    assert (to.addr_spec, to.display_name) == ("anna@example.org", "Anna Beispiel")
    assert message["Subject"] == f"Einladung: {conference.title}"
    assert (message["Auto-Submitted"], message["Content-Language"]) == ("auto-generated", "de")
    assert message["Reply-To"] == conference.organiser_email
    calendar_part, attachment = _part(message, "text/calendar"), _part(message, "application/ics")
    assert calendar_part["Content-Type"].params == {"method": "REQUEST", "charset": "UTF-8"}
    assert (attachment.get_filename(), attachment.get_content_disposition()) == (
        "invite.ics", "attachment")  # fmt: skip
    assert attachment.get_payload(decode=True) == calendar_part.get_payload(decode=True)
    texts = (_part(message, "text/plain"), _part(message, "text/html"))
    assert [part.get_content_charset() for part in texts] == ["utf-8", "utf-8"]


@pytest.mark.asyncio
async def test_invitation_bodies_and_calendar(session: AsyncSession) -> None:
    conference = await _setup(session, invite=True)
    rows = {row.recipient: row for row in await _rows(session)}
    forum_rooms = {forum.key: forum.room.name for forum in conference.forums if forum.room}
    plenary_rooms = {room.name for room in conference.rooms if room.forum_id is None}
    for local, (language, _, choices) in PEOPLE.items():
        person = await _by_email(session, f"{local}@example.org")
        message = _parse(rows[person.email])
        links = {room.name: f"{BASE}/j/{person.token}/{room.name}" for room in conference.rooms}
        own_rooms = plenary_rooms | {forum_rooms[key] for key in choices}  # first choices fit
        for body in (_text(message, "plain"), _text(message, "html")):
            assert f"{BASE}/p/{person.token}" in body
            for room, link in links.items():
                assert (link in body) is (room in own_rooms), (local, room)
            assert {"de": "Datenschutz", "en": "Privacy"}[language.value] in body
        assert message["Content-Language"] == language.value
        assert message["Subject"].startswith({"de": "Einladung", "en": "Invitation"}[language])
        calendar = _calendar(message)
        assert calendar["METHOD"] == "REQUEST"
        events = list(calendar.walk("VEVENT"))
        assert len(events) == len(own_rooms)
        assert all(event["SEQUENCE"] == 0 for event in events)
        entries = await _entries(session, person)
        assert sorted(str(e["UID"]) for e in events) == sorted(e.uid for e in entries)
        assert all(e.sequence == 0 and e.status is EntryStatus.REQUESTED for e in entries)
        assert person.invited_at == NOW


@pytest.mark.asyncio
async def test_location_follows_the_attendance_mode(session: AsyncSession) -> None:
    conference = await _setup(session, invite=True)
    rows = {row.recipient: row for row in await _rows(session)}
    forum_round = session_by_key(conference, "forums")

    def round_event(address: str) -> icalendar.Component:
        for event in _events(_parse(rows[address])):
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
    person_id = (await _by_email(session, "carla@example.org")).id
    session.expunge_all()  # run_assignment inserted rows behind the ORM's back: load afresh
    loaded = await participants_repository.get(session, conference.id, person_id)
    stored = {(e.session_id, e.forum_id): e for e in await _entries(session, loaded)}
    desired = desired_events(conference, loaded, BASE, DOMAIN)
    assert [(d.key, d.event.uid, d.fingerprint) for d in desired] == [
        (key, e.uid, e.fingerprint) for key, e in stored.items()]  # fmt: skip


@pytest.mark.asyncio
async def test_moved_plenary_updates_everyone_with_the_same_uid(
    session: AsyncSession, tmp_path: Path
) -> None:
    conference = await _setup(session, invite=True)
    moved = tmp_path / "moved.toml"  # the results plenary 15 minutes later, by re-import
    text = SAMPLE_TOML.read_text(encoding="utf-8")
    moved.write_text(text.replace('start = "13:15"', 'start = "13:30"'), encoding="utf-8")
    await import_file(session, moved)  # updates the loaded conference in place
    await session.commit()
    report = await _queue(session, conference, sync_changes)
    assert (report.people, report.queued, report.updated, report.cancelled) == (4, 4, 4, 0)
    results = session_by_key(conference, "results")
    for row in await _rows(session, "update"):
        message = _parse(row)
        person = await _by_email(session, row.recipient)
        (event,) = _events(message)
        (entry,) = [e for e in await _entries(session, person) if e.session_id == results.id]
        assert (str(event["UID"]), event["SEQUENCE"], entry.sequence) == (entry.uid, 1, 1)
        assert event.decoded("DTSTART") == results.starts_at
        method = _part(message, "text/calendar").get_param("method")
        assert (_calendar(message)["METHOD"], method) == ("REQUEST", "REQUEST")
        assert message["Subject"].startswith(("Geänderte Termine:", "Changed sessions:"))
    assert (await _queue(session, conference, sync_changes)).queued == 0


@pytest.mark.asyncio
async def test_round_moved_then_plenary_cancelled(session: AsyncSession) -> None:
    """A moved round updates only people with a seat; a cancelled plenary cancels for all."""
    conference = await _setup(session, invite=True)
    forum_round = session_by_key(conference, "forums")
    forum_round.starts_at += timedelta(minutes=15)
    forum_round.sequence += 1
    await session.commit()
    report = await _queue(session, conference, sync_changes)
    assert (report.people, report.queued, report.updated) == (3, 3, 1 + 1 + 1)
    recipients = sorted(row.recipient for row in await _rows(session, "update"))
    assert recipients == ["anna@example.org", "ben@example.org", "carla@example.org"]
    for row in await _rows(session, "update"):
        (event,) = _events(_parse(row))
        assert event["SEQUENCE"] == 1 and str(event["SUMMARY"]).startswith("Forum: ")
    results = session_by_key(conference, "results")
    results.status = SessionStatus.CANCELLED
    await session.commit()
    report = await _queue(session, conference, sync_changes)  # a plenary: everybody
    assert (report.people, report.queued, report.cancelled, report.updated) == (4, 4, 4, 0)
    for row in await _rows(session, "cancellation"):
        (event,) = _events(_parse(row))
        assert event["SEQUENCE"] == 1 and str(event["STATUS"]) == "CANCELLED"
        assert event.decoded("DTSTART") == results.starts_at
    statement = select(CalendarEntry).where(CalendarEntry.session_id == results.id)
    assert {e.status for e in await session.scalars(statement)} == {EntryStatus.CANCELLED}
    assert (await _queue(session, conference, sync_changes)).queued == 0


@pytest.mark.asyncio
async def test_forum_move_cancels_the_old_and_requests_the_new(session: AsyncSession) -> None:
    conference = await _setup(session, invite=True)
    anna = await _by_email(session, "anna@example.org")
    (old,) = [e for e in await _entries(session, anna) if e.forum_id is not None]
    await set_override(session, conference, anna.id, "werte")
    await session.commit()
    report = await _queue(session, conference, sync_changes)
    assert (report.people, report.queued, report.updated, report.cancelled) == (1, 2, 1, 1)
    (cancel,) = await _rows(session, "cancellation")
    (update,) = await _rows(session, "update")
    assert cancel.recipient == update.recipient == "anna@example.org"
    cancelled = _parse(cancel)
    method = _part(cancelled, "text/calendar").get_param("method")
    assert (_calendar(cancelled)["METHOD"], method) == ("CANCEL", "CANCEL")
    (event,) = _events(cancelled)
    assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (old.uid, 1, "CANCELLED")
    assert cancelled["Subject"].startswith("Termin entfällt")
    assert "Sprache" in _text(cancelled, "plain")
    (new,) = _events(_parse(update))
    assert str(new["UID"]) != old.uid and new["SEQUENCE"] == 0
    assert str(new["SUMMARY"]) == "Forum: Wertevermittlung und Zusammenleben"
    entries = {e.uid: e for e in await _entries(session, anna)}
    assert entries[old.uid].status is EntryStatus.CANCELLED and entries[old.uid].sequence == 1
    assert entries[str(new["UID"])].status is EntryStatus.REQUESTED
    assert (await _queue(session, conference, sync_changes)).queued == 0


@pytest.mark.asyncio
async def test_hostile_names_cannot_break_header_calendar_or_html(session: AsyncSession) -> None:
    """Names may hold anything; an address no mail can carry is skipped, not fatal."""
    conference = await load_sample(session)
    broken = Person(conference_id=conference.id, email="no address\r\nBcc: x@example.org")
    session.add(broken)
    await _person(session, conference, "oemer", first_name=HOSTILE, forum_choices=["arbeit"])
    evil = "Eve\r\nBcc: victim@example.org\r\n"  # PersonIn refuses this; the model does not
    last = "X\nBEGIN:VEVENT\nUID:evil"
    session.add(Person(conference_id=conference.id, email="evil@example.org", first_name=evil,
                       last_name=last, language=Language.EN))  # fmt: skip
    await session.commit()
    await run_assignment(session, conference)
    assert (await _queue(session, conference)).skipped == [str(broken.id)]
    assert broken.invited_at is None and await _entries(session, broken) == []
    rows = {row.recipient: row for row in await _rows(session)}
    assert set(rows) == {"oemer@example.org", "evil@example.org"}
    oemer = _parse(rows["oemer@example.org"])
    assert oemer["To"].addresses[0].display_name == HOSTILE
    assert "&lt;script&gt;" in _text(oemer, "html") and "<script>" not in _text(oemer, "html")
    for row in rows.values():
        message = _parse(row)
        head = row.body.split(b"\r\n\r\n", 1)[0]
        to_lines = [line for line in head.split(b"\r\n") if line.startswith(b"To:")]
        assert len(to_lines) == 1 and b"victim" not in head.replace(to_lines[0], b"")
        assert message["Bcc"] is None and len(message.get_all("To", [])) == 1
        lines = _ics(message).decode().split("\r\n")
        assert sum(line == "BEGIN:VEVENT" for line in lines) == len(_events(message))
        assert not any(line.startswith(("UID:evil", "Bcc")) for line in lines)
        assert all("\n" not in line and "\r" not in line for line in lines)
    (to,) = _parse(rows["evil@example.org"])["To"].addresses
    assert to.addr_spec == "evil@example.org"
    assert "victim" in to.display_name  # kept as text inside the one display name


@pytest.mark.asyncio
async def test_api_sends_once_and_reports_progress(
    session: AsyncSession, settings: Settings
) -> None:
    conference = await _setup(session)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client,
    ):
        url = f"/api/v1/conferences/{conference.slug}/invitations"
        first = await client.post(f"{url}/send")
        assert first.status_code == 200, first.text
        body, again = first.json(), (await client.post(f"{url}/send")).json()
        assert (body["invitations"]["queued"], body["changes"]["queued"]) == (4, 0)
        assert (again["invitations"]["queued"], again["outbox"]["queued"]) == (0, 4)
        progress = (await client.get(url, params={"kind": "invitation"})).json()
        assert progress["outbox"]["queued"] == 4 and progress["total"] == 4
        assert (await client.get(url, params={"kind": "nonsense"})).status_code == 422
        assert (await client.post("/api/v1/conferences/no/invitations/send")).status_code == 404
        async with httpx.AsyncClient(base_url=base_url) as anonymous:
            assert (await anonymous.get(url)).status_code == 401


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
