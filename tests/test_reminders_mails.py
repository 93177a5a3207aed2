"""Reminder mails: links, languages, templates, and the agenda they show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import ConferenceMode, SessionStatus
from orchestrator.conferences.repository import session_by_key
from orchestrator.conferences.service import plenary_room
from orchestrator.invitations.desired import AgendaItem, desired_events
from orchestrator.participants.assignment import set_override
from orchestrator.scheduling import handling
from orchestrator.scheduling.agenda import Agenda
from orchestrator.scheduling.models import ReminderKind
from orchestrator.scheduling.planning import load_people, load_seats
from tests.test_reminders import (
    BASE,
    BEFORE,
    DOMAIN,
    K,
    _bodies,
    _outbox,
    _person,
    _setup,
    _slots,
    _tick,
    berlin,
)


@pytest.mark.asyncio
async def test_reminder_mails_carry_the_personal_and_join_links(session: AsyncSession) -> None:
    conference = await _setup(session, ("anna", "ben"))
    await _tick(session, berlin(3, 11, 9, 30))
    await _tick(session, berlin(3, 18, 9, 15))  # everything before it is late by now
    await _tick(session, berlin(3, 18, 9, 30))
    outbox = await _outbox(session)
    rooms = {item.key: plenary_room(item) for item in conference.sessions}
    rooms |= {forum.key: forum.room for forum in conference.forums}
    subjects = {"de": "Erinnerung, in 7 Tagen: ", "en": "Reminder, in 7 days: "}
    for local, forum, language in (("anna", "sprache", "de"), ("ben", "werte", "en")):
        person, slots = await _person(session, local), await _slots(session, local)
        week = outbox[slots[("opening", BEFORE, "P7D")].dedup_key]
        assert week.subject == subjects[language] + conference.title
        *bodies, message = _bodies(week)
        assert (message["Auto-Submitted"], message["Content-Language"]) == ("auto-generated",
                                                                            language)  # fmt: skip
        assert message["Reply-To"] == conference.organiser_email
        own = [rooms[key] for key in ("opening", forum, "results")]
        for body in bodies:
            assert f"{BASE}/p/{person.token}" in body
            assert all(f"{BASE}/j/{person.token}/{room.name}" in body for room in own if room)
            assert {"de": "Datenschutz", "en": "Privacy"}[language] in body
        soon = _bodies(outbox[slots[("opening", BEFORE, "PT15M")].dedup_key])[0]
        assert {"de": "in 15 Minuten", "en": "in 15 minutes"}[language] in soon
    ben, slots = await _person(session, "ben"), await _slots(session, "ben")
    row = outbox[slots[("opening", K.STARTING_NOW, None)].dedup_key]
    assert row.subject == f"Join online now: {conference.title}"
    join = f"{BASE}/j/{ben.token}/{rooms['opening'].name}"  # type: ignore[union-attr]
    text, html, _ = _bodies(row)
    assert f"Join online here:\r\n{join}" in text and f'href="{join}"' in html
    assert ("opening", K.STARTING_NOW, None) not in await _slots(session, "anna")  # in person


def _context(kind: ReminderKind, hostile: str) -> dict[str, Any]:
    start = berlin(3, 18, 9, 30)
    item = AgendaItem("Begrüßung", "", start, start + timedelta(hours=1), "Kreishaus",
                      f"{BASE}/j/tok/room-1")  # fmt: skip
    conference = {"title": "Integrationskonferenz", "lead_theme": "Arbeit",
                  "organiser": "KI Heinsberg", "organiser_email": "ki@example.org"}  # fmt: skip
    return {"name": hostile, "conference": conference, "timezone": "Europe/Berlin",
            "personal_url": f"{BASE}/p/tok", "results_url": f"{BASE}/p/tok#ergebnisse",
            "agenda": [] if kind in (K.THANK_YOU, K.NO_SHOW) else [item], "cancelled": [],
            "item": item, "days_left": 1, "minutes_left": 24 * 60, "starts": start,
            "round": item, "round_start": start, "forums": ["Sprache", "Arbeit"]}  # fmt: skip


WORDS = {"de": ("Guten Tag", "Datenschutz", "Ihre persönliche Seite"),
         "en": ("Hello", "Privacy", "Your personal page")}  # fmt: skip


@pytest.mark.parametrize("kind", list(ReminderKind))
@pytest.mark.parametrize("language", ["de", "en"])
def test_every_reminder_template_renders_in_its_language(kind: ReminderKind, language: str) -> None:
    hostile, after = 'Ömer "O\'Connor" <script>', kind in (K.THANK_YOU, K.NO_SHOW)
    rendered = handling.render_reminder(handling.TEMPLATES[kind], language, _context(kind, hostile))
    assert rendered.subject.endswith(": Integrationskonferenz") and "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert all(word in body for word in WORDS[language])
        assert not any(word in body for word in WORDS["en" if language == "de" else "de"])
        assert f"{BASE}/p/tok" in body
        assert (f"{BASE}/j/tok/room-1" in body) is not after
        assert (f"{BASE}/p/tok#ergebnisse" in body) is after
    assert f'<html lang="{language}">' in rendered.html
    assert "&lt;script&gt;" in rendered.html and "<script>" not in rendered.html
    assert hostile in rendered.text
    if kind is BEFORE:
        assert rendered.subject.startswith(("Erinnerung, morgen:", "Reminder, tomorrow:"))
    with pytest.raises(ValueError, match="no mail template"):
        handling.render_reminder("invitation", language, {})


@pytest.mark.parametrize("mode", list(ConferenceMode))
@pytest.mark.asyncio
async def test_the_agenda_is_the_one_invitations_show(
    session: AsyncSession, mode: ConferenceMode
) -> None:
    conference = await _setup(session)
    anna = await _person(session, "anna")
    await set_override(session, conference, anna.id, None)  # on the waiting list: no forum
    session_by_key(conference, "results").status = SessionStatus.CANCELLED
    conference.mode = mode
    seats = await load_seats(session, conference.id)
    agenda = Agenda(conference, BASE)
    for person in await load_people(session, conference.id):
        own = seats.get(person.id, {})
        held = {round_id: forum for round_id, forum in own.items() if forum is not None}
        invited = desired_events(conference, person, BASE, DOMAIN, held)
        assert list(agenda.items(person, own).values()) == [event.item for event in invited]
        assert list(agenda.items(person, own)) == [event.key[0] for event in invited]
