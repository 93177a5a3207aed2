"""The personal page /p/{token} over real HTTP (uvicorn on loopback), SQLite and PostgreSQL."""

from __future__ import annotations

import email
import re
import secrets
from collections.abc import AsyncIterator
from email.message import Message

import httpx
import pytest
import pytest_asyncio
import vobject
from icalendar import Calendar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.checkin_codes import (
    checkin_code,
    grouped,
    short_code,
    verify_checkin_code,
)
from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Forum
from orchestrator.conferences.repository import get_by_slug
from orchestrator.config import Settings
from orchestrator.invitations.models import CalendarEntry
from orchestrator.invitations.service import queue_invitations
from orchestrator.mail.models import OutboxMessage
from orchestrator.mail.rendering import message_domain
from orchestrator.participants.models import (
    Assignment,
    AssignmentSource,
    AttendanceMode,
    Language,
    Person,
    Role,
    Rsvp,
)
from orchestrator.web import pages
from orchestrator.web.participant import csrf_token
from tests.sample_world import LiveApp, World, berlin, sample_world, serve_frozen

FORUM_TITLE = "Sprache – Schlüssel zum Miteinander"


class Live(LiveApp):
    def csrf(self, person: Person) -> str:
        return csrf_token(self.settings.require("secret_key"), person.token)

    async def page(self, person: Person | str, status: int = 200, **kwargs: object) -> str:
        token = person if isinstance(person, str) else person.token
        response = await self.client.get(f"/p/{token}", **kwargs)  # type: ignore[arg-type]
        return _html(response, status)

    async def post(
        self, person: Person, action: str, csrf: str | None = "", **fields: str
    ) -> httpx.Response:
        data = dict(fields)
        if csrf is not None:
            data["csrf"] = csrf or self.csrf(person)
        return await self.client.post(f"/p/{person.token}/{action}", data=data)


def _html(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    _private(response)
    assert "Traceback" not in response.text
    return response.text


def _private(response: httpx.Response) -> None:
    """no-store, no Referer, the join pages' CSP, noindex."""
    for name, value in pages.PAGE_HEADERS.items():
        assert response.headers[name] == value


def _status(response: httpx.Response, token: str) -> str:
    """The status key of a POST-redirect-GET answer."""
    assert response.status_code == 303, response.text
    _private(response)
    location = response.headers["location"]
    found = re.fullmatch(rf"/p/{re.escape(token)}\?status=([a-z_]+)#status", location)
    assert found, location
    return found[1]


@pytest_asyncio.fixture
async def world(session: AsyncSession) -> World:
    specs = [
        ("anna", Role.PARTICIPANT, "sprache"),
        ("mo", Role.MODERATOR, "sprache"),
        ("emma", Role.PARTICIPANT, "werte"),  # speaks English; fills "werte" (capacity 1)
        ("evil", Role.PARTICIPANT, "sprache"),
        ("waiting", Role.PARTICIPANT, None),
    ]
    world = await sample_world(session, specs)
    await session.execute(update(Forum).where(Forum.key == "werte").values(capacity=1))
    await session.commit()
    return world


@pytest_asyncio.fixture
async def live(settings: Settings, world: World) -> AsyncIterator[Live]:
    clock = FrozenClock(berlin(8, 0))  # the morning of the conference: nothing open yet
    async with serve_frozen(settings, clock) as client:
        yield Live(client, clock, settings)


async def _fresh(session: AsyncSession, person: Person) -> Person:
    statement = select(Person).where(Person.id == person.id)
    found = await session.scalar(statement.execution_options(populate_existing=True))
    assert found is not None
    return found


async def _seat(session: AsyncSession, person: Person) -> tuple[str, AssignmentSource]:
    statement = (
        select(Forum.key, Assignment.source)
        .join(Forum, Forum.id == Assignment.forum_id)
        .where(Assignment.person_id == person.id)
    )
    row = (await session.execute(statement)).one()
    return row[0], row[1]


async def _invite(sessions: async_sessionmaker[AsyncSession], world: World, live: Live) -> None:
    """Queue everyone's invitation as `invites send` would: from the rows as stored."""
    settings = live.settings
    async with sessions() as session:
        conference = await get_by_slug(session, world.conference.slug)
        await queue_invitations(
            session,
            conference,
            base_url=settings.base_url,
            message_domain=message_domain(settings.mail_from),
            sender=settings.mail_from,
            now=berlin(7, 0),
        )
        await session.commit()


def _calendar_part(body: bytes) -> bytes:
    message: Message = email.message_from_bytes(body)
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no calendar part")


def _calendar_method(body: bytes) -> str:
    return str(Calendar.from_ical(_calendar_part(body))["METHOD"])


@pytest.mark.asyncio
async def test_page_shows_agenda_forum_and_room(world: World, live: Live) -> None:
    text = await live.page(world.people["anna"])
    assert '<html lang="de">' in text and "Ihre persönliche Seite" in text
    assert (
        "Do., 18. März 2027, 09:30–10:45 Uhr" in text and "Alle Uhrzeiten: deutsche Zeit." in text
    )
    assert "Do., 18. März 2027, 11:00–12:30 Uhr" in text
    assert f"Sie nehmen am Forum „{FORUM_TITLE}“ teil." in text
    assert "Raum vor Ort: Sitzungssaal 1" in text
    assert "(Ihr Forum)" in text  # "sprache", where anna sits
    assert "40 von 40 Plätzen frei" in text and "50 von 50 Plätzen frei" in text
    assert re.search(r'value="werte"[^>]* disabled>', text) and "(ausgebucht)" in text  # full


@pytest.mark.asyncio
async def test_join_buttons_are_live_only_in_the_window(world: World, live: Live) -> None:
    anna, rooms = world.people["anna"], world.rooms
    text = await live.page(anna)
    assert "/j/" not in text
    assert "Öffnet um 09:00 Uhr" in text and "Öffnet um 10:45 Uhr" in text
    live.clock.set(berlin(9, 30))
    text = await live.page(anna)
    assert f'href="/j/{anna.token}/{rooms["opening"]}"' in text
    assert f"/j/{anna.token}/{rooms['sprache']}" not in text
    assert "Öffnet um 10:45 Uhr" in text
    live.clock.set(berlin(11, 30))
    text = await live.page(anna)
    assert f'href="/j/{anna.token}/{rooms["sprache"]}"' in text
    assert f"/j/{anna.token}/{rooms['opening']}" not in text
    assert "Diese Sitzung ist vorbei" in text


@pytest.mark.asyncio
async def test_rsvp_is_stored_and_shown(world: World, live: Live, session: AsyncSession) -> None:
    anna = world.people["anna"]
    assert _status(await live.post(anna, "rsvp", answer="declined"), anna.token) == "rsvp_saved"
    stored = await _fresh(session, anna)
    assert stored.rsvp is Rsvp.DECLINED and stored.rsvp_at == berlin(8, 0)
    text = await live.page(anna, params={"status": "rsvp_saved"})
    assert "Sie haben abgesagt" in text and "Ihre Antwort wurde gespeichert." in text
    assert 'value="declined" id="answer-declined" checked' in text
    await live.post(anna, "rsvp", answer="tentative")
    assert (await _fresh(session, anna)).rsvp is Rsvp.TENTATIVE
    assert _status(await live.post(anna, "rsvp", answer="maybe"), anna.token) == "answer_missing"
    assert (await _fresh(session, anna)).rsvp is Rsvp.TENTATIVE


@pytest.mark.asyncio
async def test_forum_change_sends_cancel_and_request(
    world: World, live: Live, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    anna = world.people["anna"]
    await _invite(sessions, world, live)
    answer = await live.post(anna, "forum", forum="bildung")
    assert _status(answer, anna.token) == "forum_changed"
    assert await _seat(session, anna) == ("bildung", AssignmentSource.SELF_SERVICE)
    mails = await session.scalars(select(OutboxMessage).where(OutboxMessage.person_id == anna.id))
    methods = {mail.kind: _calendar_method(mail.body) for mail in mails}
    assert methods == {"invitation": "REQUEST", "cancellation": "CANCEL", "update": "REQUEST"}
    text = await live.page(anna)
    assert "Sie nehmen am Forum „(Aus-)Bildung" in text
    again = await live.post(anna, "forum", forum="bildung")
    assert _status(again, anna.token) == "forum_unchanged"


@pytest.mark.asyncio
async def test_full_forum_is_refused(world: World, live: Live, session: AsyncSession) -> None:
    anna = world.people["anna"]
    assert _status(await live.post(anna, "forum", forum="werte"), anna.token) == "forum_full"
    assert await _seat(session, anna) == ("sprache", AssignmentSource.OVERRIDE)
    text = await live.page(anna, params={"status": "forum_full"})
    assert "Dieses Forum ist ausgebucht" in text
    assert _status(await live.post(anna, "forum", forum="nope"), anna.token) == "forum_unknown"
    mo = world.people["mo"]
    assert _status(await live.post(mo, "forum", forum="arbeit"), mo.token) == "forum_not_allowed"
    live.clock.set(berlin(11, 0))
    assert _status(await live.post(anna, "forum", forum="arbeit"), anna.token) == "forum_closed"
    assert await _seat(session, anna) == ("sprache", AssignmentSource.OVERRIDE)
    assert await _seat(session, mo) == ("sprache", AssignmentSource.OVERRIDE)


@pytest.mark.asyncio
async def test_waiting_list_can_take_a_free_seat(
    world: World, live: Live, session: AsyncSession
) -> None:
    waiting = world.people["waiting"]
    assert "Warteliste" in await live.page(waiting)
    assert _status(await live.post(waiting, "forum", forum="arbeit"), waiting.token) == (
        "forum_changed"
    )
    assert await _seat(session, waiting) == ("arbeit", AssignmentSource.SELF_SERVICE)


@pytest.mark.asyncio
async def test_consent_withdrawal_and_renewal(
    world: World, live: Live, session: AsyncSession
) -> None:
    anna = world.people["anna"]
    answer = await live.post(anna, "consent", choice="withdraw")
    assert _status(answer, anna.token) == "consent_withdrawn"
    stored = await _fresh(session, anna)
    assert stored.consent is False and stored.consent_at == berlin(8, 0)
    text = await live.page(anna)
    assert "Sie haben Ihre Einwilligung widerrufen." in text
    assert "gelöscht oder anonymisiert" in text
    # Only the action that applies: consent again, nothing to withdraw.
    assert "Wieder einwilligen" in text and 'name="choice" value="withdraw"' not in text
    live.clock.set(berlin(8, 5))
    assert _status(await live.post(anna, "consent", choice="give"), anna.token) == "consent_given"
    stored = await _fresh(session, anna)
    assert stored.consent is True and stored.consent_at == berlin(8, 5)
    given = await live.page(anna)
    assert 'name="choice" value="give"' not in given and "keine Erinnerungen mehr" in given


@pytest.mark.asyncio
async def test_online_people_get_the_admission_code_only_as_a_fallback(
    world: World, live: Live, session: AsyncSession
) -> None:
    anna = world.people["anna"]
    on_site = await live.page(anna)
    assert on_site.index('id="admission"') < on_site.index('id="calendar"')  # the main thing
    assert "Ihren Code für den Einlass" in on_site
    stored = await _fresh(session, anna)
    stored.attendance_mode = AttendanceMode.ONLINE
    await session.commit()
    online = await live.page(anna)
    assert online.index('id="calendar"') < online.index('id="admission"')  # after the rest
    assert "Kommen Sie doch vor Ort?" in online and "<details" in online
    assert "die Links zu den Video-Räumen" in online


@pytest.mark.asyncio
async def test_language_switch(world: World, live: Live, session: AsyncSession) -> None:
    anna, emma = world.people["anna"], world.people["emma"]
    text = await live.page(emma)
    assert '<html lang="en">' in text and "Your personal page" in text
    assert "Thu, 18 March 2027, 09:30–10:45" in text
    assert "Opens at 09:00" in text
    viewed = await live.page(anna, params={"lang": "en"})
    assert '<html lang="en">' in viewed and 'value="en" class="secondary">Keep English' in viewed
    assert (await _fresh(session, anna)).language is Language.DE  # a GET changes nothing
    answer = await live.post(anna, "language", lang="en")
    assert _status(answer, anna.token) == "language_saved"
    assert (await _fresh(session, anna)).language is Language.EN
    text = await live.page(anna, params={"status": "language_saved"})
    assert '<html lang="en">' in text and "Your language has been saved." in text


@pytest.mark.asyncio
async def test_calendar_download(
    world: World, live: Live, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A PUBLISH file (no ATTENDEE, nothing to answer) with the invitation's UIDs."""
    anna = world.people["anna"]
    await _invite(sessions, world, live)
    mails = (await session.scalars(select(OutboxMessage))).all()
    response = await live.client.get(f"/p/{anna.token}/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=PUBLISH"
    filename = re.sub(r"[^a-z0-9-]", "", world.conference.slug.lower())
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}.ics"'
    assert response.headers["cache-control"] == "no-store"
    calendar = Calendar.from_ical(response.content)
    assert str(calendar["METHOD"]) == "PUBLISH"
    events = calendar.events
    assert [event.start for event in events] == [berlin(9, 30), berlin(11), berlin(13, 15)]
    assert all(str(getattr(event.start, "tzinfo", "")) == "Europe/Berlin" for event in events)
    assert len(calendar.walk("VTIMEZONE")) == 1
    assert FORUM_TITLE in str(events[1]["SUMMARY"])
    assert all(str(event["STATUS"]) == "CONFIRMED" and "ORGANIZER" in event for event in events)
    assert not any("ATTENDEE" in event for event in events)
    assert b"RSVP" not in response.content and anna.email.encode() not in response.content
    other = vobject.readOne(response.content.decode("utf-8"))
    assert other.method.value == "PUBLISH"
    assert [event.dtstart.value for event in other.vevent_list] == [e.start for e in events]
    assert not any("attendee" in event.contents for event in other.vevent_list)
    downloaded = {(str(e["UID"]), int(str(e["SEQUENCE"]))) for e in events}
    assert downloaded == {(e.uid.value, int(e.sequence.value)) for e in other.vevent_list}
    entries = await session.scalars(select(CalendarEntry).where(CalendarEntry.person_id == anna.id))
    assert downloaded == {(entry.uid, entry.sequence) for entry in entries}
    (invitation,) = [mail for mail in mails if mail.person_id == anna.id]
    mailed = Calendar.from_ical(_calendar_part(invitation.body)).events
    assert downloaded == {(str(e["UID"]), int(str(e["SEQUENCE"]))) for e in mailed}
    assert len((await session.scalars(select(OutboxMessage))).all()) == len(mails)  # none sent


@pytest.mark.asyncio
async def test_csrf_missing_or_wrong_changes_nothing(
    world: World, live: Live, session: AsyncSession
) -> None:
    anna, emma = world.people["anna"], world.people["emma"]
    for csrf in (None, "0" * 64, live.csrf(emma)):
        for action, fields in [
            ("rsvp", {"answer": "declined"}),
            ("forum", {"forum": "arbeit"}),
            ("consent", {"choice": "withdraw"}),
            ("language", {"lang": "en"}),
        ]:
            text = _html(await live.post(anna, action, csrf, **fields), 403)
            assert "Dieses Formular konnte nicht angenommen werden" in text
    stored = await _fresh(session, anna)
    assert (stored.rsvp, stored.consent_at, stored.language) == (Rsvp.NEEDS_ACTION, None, "de")
    assert await _seat(session, anna) == ("sprache", AssignmentSource.OVERRIDE)


@pytest.mark.asyncio
async def test_unknown_token_gets_the_join_404(world: World, live: Live) -> None:
    anna = world.people["anna"]
    tampered = anna.token[:-1] + ("A" if anna.token[-1] != "A" else "B")
    for token in (secrets.token_urlsafe(32), tampered, "x"):
        text = await live.page(token, 404)
        assert "Dieser Link ist ungültig" in text and "/p/" not in text
    response = await live.client.post(f"/p/{tampered}/rsvp", data={"answer": "declined"})
    assert "Dieser Link ist ungültig" in _html(response, 404)
    assert (await live.client.get(f"/p/{tampered}/calendar.ics")).status_code == 404


@pytest.mark.asyncio
async def test_names_are_escaped(world: World, live: Live) -> None:
    text = await live.page(world.people["evil"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>" not in text


@pytest.mark.asyncio
async def test_checkin_qr_code_verifies(world: World, live: Live) -> None:
    anna = world.people["anna"]
    text = await live.page(anna)
    assert re.search(r'<svg [^>]*role="img" aria-label="QR-Code für den Einlass"', text)
    assert "<title>QR-Code für den Einlass</title>" in text
    secret = live.settings.require("secret_key")
    assert verify_checkin_code(secret, checkin_code(secret, anna.id)) == anna.id
    found = re.search(r'<code class="checkin-code checkin-code-short">([^<]+)</code>', text)
    assert found is not None  # beside the QR code: the short code to read out
    assert found[1] == grouped(short_code(secret, anna.id))
    assert re.fullmatch(r"[A-HJKMNP-Z2-9]{4} [A-HJKMNP-Z2-9]{4}", found[1])
