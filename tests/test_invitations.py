"""Invitation mails on SQLite and PostgreSQL: templates, MIME structure, headers, bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.invitations.models import EntryStatus
from orchestrator.invitations.service import sync_changes
from orchestrator.mail.models import OutboxState
from orchestrator.mail.outbox import counts_by_state
from orchestrator.mail.rendering import KINDS, LANGUAGES, render
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.models import Language, Person
from tests.conftest import load_sample
from tests.invitation_helpers import (
    BASE,
    NOW,
    PEOPLE,
    SENDER,
    add_person,
    calendar_of,
    conference_with_people,
    entries_of,
    events_of,
    ics_of,
    mime_part,
    outbox_rows,
    parse_mail,
    person_by_email,
    queue_mails,
    text_of,
)

HOSTILE = 'Ömer "O\'Connor" <script>'


def _tree(part: EmailMessage) -> str:
    """The MIME tree as text: type(child,child)."""
    children = ",".join(_tree(child) for child in part.iter_parts())  # type: ignore[arg-type]
    return f"{part.get_content_type()}({children})" if children else part.get_content_type()


def _context(name: str = HOSTILE) -> dict[str, Any]:
    start = datetime(2027, 3, 18, 9, 30, tzinfo=UTC)
    item = {"title": "Begrüßung", "forum": "", "start": start, "end": start + timedelta(hours=1),
            "place": "Kreishaus", "join_url": f"{BASE}/j/tok/room-1", "changed": True}  # fmt: skip
    conference = {"title": "Integrationskonferenz\r\nBcc: victim@example.org\x00",
                  "lead_theme": "Arbeit", "organiser": "KI Heinsberg",
                  "organiser_email": "ki@example.org"}  # fmt: skip
    return {"name": name, "conference": conference, "timezone": "Europe/Berlin",
            "personal_url": f"{BASE}/p/tok", "agenda": [item], "cancelled": [item]}  # fmt: skip


WORDS = {"de": ("Guten Tag", "Datenschutz", "Ihre persönliche Seite", "deutsche Zeit"),
         "en": ("Hello", "Privacy", "Your personal page", "German time")}  # fmt: skip


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
    assert "Europe/Berlin" not in rendered.text + rendered.html  # the zone in words


@pytest.mark.asyncio
async def test_invitation_mime_structure_and_headers(session: AsyncSession) -> None:
    conference = await conference_with_people(session)
    report = await queue_mails(session, conference)
    assert (report.people, report.queued, report.updated) == (4, 4, 3 + 3 + 3 + 2)
    again = await queue_mails(session, conference)  # queued twice: nothing new
    assert (again.people, again.queued) == (0, 0)
    assert (await queue_mails(session, conference, sync_changes)).queued == 0
    assert (await counts_by_state(session, conference.id, "invitation"))["queued"] == 4
    rows = {row.recipient: row for row in await outbox_rows(session)}
    message = parse_mail(rows["anna@example.org"])
    alternative = "multipart/alternative(text/plain,text/html,text/calendar)"
    assert _tree(message) == f"multipart/mixed({alternative},application/ics)"
    assert message["Message-ID"] == rows["anna@example.org"].message_id
    assert message["Date"].datetime == NOW and message["From"] == SENDER
    (to,) = message["To"].addresses
    assert (to.addr_spec, to.display_name) == ("anna@example.org", "Anna Beispiel")
    assert message["Subject"] == f"Einladung: {conference.title}"
    assert (message["Auto-Submitted"], message["Content-Language"]) == ("auto-generated", "de")
    assert message["Reply-To"] == conference.organiser_email
    calendar_part = mime_part(message, "text/calendar")
    attachment = mime_part(message, "application/ics")
    assert calendar_part["Content-Type"].params == {"method": "REQUEST", "charset": "UTF-8"}
    assert (attachment.get_filename(), attachment.get_content_disposition()) == (
        "invite.ics", "attachment")  # fmt: skip
    assert attachment.get_payload(decode=True) == calendar_part.get_payload(decode=True)
    texts = (mime_part(message, "text/plain"), mime_part(message, "text/html"))
    assert [part.get_content_charset() for part in texts] == ["utf-8", "utf-8"]


@pytest.mark.asyncio
async def test_invitation_bodies_and_calendar(session: AsyncSession) -> None:
    conference = await conference_with_people(session, invite=True)
    rows = {row.recipient: row for row in await outbox_rows(session)}
    forum_rooms = {forum.key: forum.room.name for forum in conference.forums if forum.room}
    plenary_rooms = {room.name for room in conference.rooms if room.forum_id is None}
    for local, (language, _, choices) in PEOPLE.items():
        person = await person_by_email(session, f"{local}@example.org")
        message = parse_mail(rows[person.email])
        links = {room.name: f"{BASE}/j/{person.token}/{room.name}" for room in conference.rooms}
        own_rooms = plenary_rooms | {forum_rooms[key] for key in choices}  # first choices fit
        for body in (text_of(message, "plain"), text_of(message, "html")):
            assert f"{BASE}/p/{person.token}" in body
            for room, link in links.items():
                assert (link in body) is (room in own_rooms), (local, room)
            assert {"de": "Datenschutz", "en": "Privacy"}[language.value] in body
        assert message["Content-Language"] == language.value
        assert message["Subject"].startswith({"de": "Einladung", "en": "Invitation"}[language])
        calendar = calendar_of(message)
        assert calendar["METHOD"] == "REQUEST"
        events = list(calendar.walk("VEVENT"))
        assert len(events) == len(own_rooms)
        assert all(event["SEQUENCE"] == 0 for event in events)
        entries = await entries_of(session, person)
        assert sorted(str(e["UID"]) for e in events) == sorted(e.uid for e in entries)
        assert all(e.sequence == 0 and e.status is EntryStatus.REQUESTED for e in entries)
        assert person.invited_at == NOW


@pytest.mark.asyncio
async def test_hostile_names_cannot_break_header_calendar_or_html(session: AsyncSession) -> None:
    """Names may hold anything; an address no mail can carry fails visibly, not fatally."""
    conference = await load_sample(session)
    broken = Person(conference_id=conference.id, email="no address\r\nBcc: x@example.org")
    session.add(broken)
    await add_person(session, conference, "oemer", first_name=HOSTILE, forum_choices=["arbeit"])
    evil = "Eve\r\nBcc: victim@example.org\r\n"  # PersonIn refuses this; the model does not
    last = "X\nBEGIN:VEVENT\nUID:evil"
    session.add(Person(conference_id=conference.id, email="evil@example.org", first_name=evil,
                       last_name=last, language=Language.EN))  # fmt: skip
    await session.commit()
    await run_assignment(session, conference)
    assert (await queue_mails(session, conference)).failed == [str(broken.id)]
    assert broken.invited_at is None and await entries_of(session, broken) == []
    everything = await outbox_rows(session)
    (failed,) = [row for row in everything if row.state is OutboxState.FAILED]
    assert (failed.person_id, failed.body, failed.attempts) == (broken.id, b"", 0)
    assert failed.recipient == "no address Bcc: x@example.org"  # one line, never a header
    assert failed.last_error.startswith("Keine Nachricht möglich / no message possible: ")
    rows = {row.recipient: row for row in everything if row.state is OutboxState.QUEUED}
    assert set(rows) == {"oemer@example.org", "evil@example.org"}
    oemer = parse_mail(rows["oemer@example.org"])
    assert oemer["To"].addresses[0].display_name == HOSTILE
    assert "&lt;script&gt;" in text_of(oemer, "html") and "<script>" not in text_of(oemer, "html")
    for row in rows.values():
        message = parse_mail(row)
        head = row.body.split(b"\r\n\r\n", 1)[0]
        to_lines = [line for line in head.split(b"\r\n") if line.startswith(b"To:")]
        assert len(to_lines) == 1 and b"victim" not in head.replace(to_lines[0], b"")
        assert message["Bcc"] is None and len(message.get_all("To", [])) == 1
        lines = ics_of(message).decode().split("\r\n")
        assert sum(line == "BEGIN:VEVENT" for line in lines) == len(events_of(message))
        assert not any(line.startswith(("UID:evil", "Bcc")) for line in lines)
        assert all("\n" not in line and "\r" not in line for line in lines)
    (to,) = parse_mail(rows["evil@example.org"])["To"].addresses
    assert to.addr_spec == "evil@example.org"
    assert "victim" in to.display_name  # kept as text inside the one display name
