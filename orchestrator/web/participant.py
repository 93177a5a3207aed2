"""The personal page /p/{token}: agenda, forum, join buttons, RSVP, consent, check-in code.

No login: the personal token is the key, resolved in constant time by the join links'
`JoinLookup`. Every form is a POST carrying `csrf` = HMAC-SHA256(ORCH_SECRET_KEY, "csrf:" +
token) and answers 303 to the page with a `status` key (never free text); a missing or
wrong `csrf` gets a 403 page and changes nothing. An unknown token gets the join links' 404.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.checkin_codes import checkin_code, grouped, qr_svg, short_code
from orchestrator.attendance.retention import retention_ends
from orchestrator.conferences.models import Conference, ConferenceMode, SessionStatus
from orchestrator.conferences.service import plenary_room
from orchestrator.conferences.wording import organiser_accusative
from orchestrator.config import Settings
from orchestrator.followups import after_change
from orchestrator.invitations.desired import AgendaItem, Desired, desired_events
from orchestrator.invitations.ics import Party, build_calendar
from orchestrator.mail.rendering import message_domain
from orchestrator.participants import self_service
from orchestrator.participants.models import AttendanceMode, Language, Person, Rsvp
from orchestrator.rooms.joining import Refusal, decide_join
from orchestrator.rooms.models import Room
from orchestrator.rooms.templates import RoomTemplate
from orchestrator.web import join, pages
from orchestrator.web.deps import AppClock, AppSettings, DbSession, Mail, RoomTemplates

STATUS_KEYS = frozenset(
    {
        "rsvp_saved",
        "answer_missing",
        "forum_changed",
        "forum_unchanged",
        *(refusal.value for refusal in self_service.Refusal),
        "consent_withdrawn",
        "consent_given",
        "language_saved",
        "calendar_empty",
    }
)
CALENDAR_MEDIA_TYPE = "text/calendar; charset=utf-8; method=PUBLISH"
_SVG_SIZE = re.compile(r'<svg ([^>]*?)width="(\d+)" height="(\d+)"')

Field = Annotated[str, Form()]
CsrfField = Annotated[str | None, Form()]


def csrf_token(secret: str, token: str) -> str:
    """The form token of one personal page: HMAC-SHA256(secret, "csrf:" + token), hex."""
    return hmac.new(secret.encode(), f"csrf:{token}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, token: str, given: str) -> bool:
    """Whether a form carried this page's token (constant-time compare)."""
    return hmac.compare_digest(csrf_token(secret, token).encode(), given.encode())


@dataclass(frozen=True)
class JoinButton:
    """What an agenda line offers: a live link, or when (or that) it is not open."""

    state: str  # "live", "later", "over", "closed"
    url: str = ""
    opens: str = ""  # HH:MM in the conference's zone


@dataclass(frozen=True)
class Line:
    """One session of the person's agenda, formatted for the page."""

    item: AgendaItem  # title, forum, place, start and end in the conference's zone
    day: str
    button: JoinButton | None
    cancelled: bool = False  # shown as cancelled, with no button


def _day(moment: datetime, language: str) -> str:
    return format_date(moment, format=pages.DATE_PATTERNS[language], locale=language)


def _room_of(conference: Conference, wanted: Desired) -> Room | None:
    session_id, forum_id = wanted.key
    if forum_id is not None:
        forum = next((f for f in conference.forums if f.id == forum_id), None)
        return forum.room if forum is not None else None
    item = next((s for s in conference.sessions if s.id == session_id), None)
    return plenary_room(item) if item is not None else None


def _button(
    person: Person,
    room: Room | None,
    templates: dict[str, RoomTemplate],
    now: datetime,
    zone: ZoneInfo,
) -> JoinButton | None:
    if room is None:
        return None
    decision = decide_join(person, room, templates, now)
    if decision.allowed:
        return JoinButton("live", url=f"/j/{person.token}/{room.name}")
    if decision.refusal is Refusal.TOO_EARLY and decision.window is not None:
        return JoinButton(
            "later", opens=decision.window.opens_at.astimezone(zone).strftime("%H:%M")
        )
    return JoinButton("over" if decision.refusal is Refusal.TOO_LATE else "closed")


def agenda(
    conference: Conference,
    person: Person,
    events: list[Desired],
    templates: dict[str, RoomTemplate],
    now: datetime,
    language: str,
) -> list[Line]:
    """The person's sessions with times in the conference's zone and their join buttons."""
    zone = ZoneInfo(conference.timezone)
    cancelled = {s.id for s in conference.sessions if s.status is SessionStatus.CANCELLED}
    lines = []
    for wanted in events:
        item, day = wanted.item, _day(wanted.item.start, language)
        if wanted.key[0] in cancelled:
            lines.append(Line(item, day, None, cancelled=True))
            continue
        button = _button(person, _room_of(conference, wanted), templates, now, zone)
        lines.append(Line(item, day, button if item.join_url is not None else None))
    return lines


def _qr(code: str) -> Callable[[str], Markup]:
    """A callable for the template: the check-in QR as inline SVG named by `title`."""

    def draw(title: str) -> Markup:
        svg = _SVG_SIZE.sub(
            lambda m: (
                f'<svg {m[1]}role="img" aria-label="{escape(title)}" focusable="false" '
                f'viewBox="0 0 {m[2]} {m[3]}" width="{m[2]}" height="{m[3]}"'
            ),
            qr_svg(code, title=title),
            count=1,
        )
        return Markup(svg)  # noqa: S704 (segno's SVG; the title is escaped by segno and here)

    return draw


def _language(request: Request, person: Person) -> str:
    asked = request.query_params.get("lang", "").lower()
    return asked if asked in pages.LANGUAGES else person.language.value


def _not_found(request: Request) -> HTMLResponse:
    language = pages.pick_language(request)
    values: dict[str, object] = {"reason": "unknown_token", "site_title": "", "name": ""}
    values |= {"personal_url": None, "organiser": "", "organiser_email": ""}
    return pages.page("join_problem.html", language, 404, **values)


def _forbidden(request: Request, person: Person, token: str) -> HTMLResponse:
    language = pages.pick_language(request, person.language.value)
    values = {"site_title": "", "personal_url": f"/p/{token}"}
    return pages.page("participant_forbidden.html", language, 403, **values)


def _see_other(token: str, status: str) -> Response:
    headers = {**pages.PAGE_HEADERS, "Location": f"/p/{token}?status={status}#status"}
    return Response(status_code=303, headers=headers)


class _Refused(HTTPException):
    """The token or the form's CSRF token is wrong: the request gets this page instead."""

    def __init__(self, page: HTMLResponse) -> None:
        super().__init__(page.status_code)
        self.page = page


class PersonalRoute(APIRoute):
    """Routes of the personal page: a refused token or form gets its page, not bare JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except _Refused as refused:
                return refused.page

        return guarded


router = APIRouter(tags=["participants"], route_class=PersonalRoute)


async def _holder(token: str, request: Request) -> Person:
    """The token's holder; an unknown token gets the 404 page."""
    person, _ = await join.lookup(request).find(token, "")
    if person is None:
        raise _Refused(_not_found(request))
    return person


Holder = Annotated[Person, Depends(_holder)]


async def _checked(token: str, request: Request, holder: Holder, csrf: CsrfField = None) -> Person:
    """The token's holder if the form's CSRF token is right; else the 403 page."""
    settings: Settings = request.app.state.settings
    if csrf is None or not csrf_valid(settings.require("secret_key"), token, csrf):
        raise _Refused(_forbidden(request, holder, token))
    return holder


Checked = Annotated[Person, Depends(_checked)]


async def _context(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    templates: dict[str, RoomTemplate],
    found: Person,
    now: datetime,
) -> tuple[str, dict[str, object]]:
    """The page's language and everything its template shows."""
    person, conference = await self_service.load(session, found.id)
    language, secret = _language(request, person), settings.require("secret_key")
    domain = message_domain(settings.mail_from)
    events = desired_events(conference, person, "", domain, cancelled=True)
    free = await self_service.free_seats(session, conference)
    positions = await self_service.waiting_places(session, conference, person)
    ends = retention_ends(conference)
    deleted_by = _day(ends.astimezone(ZoneInfo(conference.timezone)), language) if ends else ""
    status = request.query_params.get("status", "")
    code = checkin_code(secret, person.id)
    return language, {
        "site_title": conference.title,
        "conference": conference,
        "person": person,
        "name": person.display_name,
        "status": status if status in STATUS_KEYS else "",
        "lines": agenda(conference, person, events, templates, now, language),
        "rounds": self_service.forum_offers(conference, person, free, now, positions),
        "rsvp": person.rsvp.value,
        "stored_language": person.language.value,
        "consent": "given" if person.consent else "withdrawn" if person.consent_at else "open",
        # Online: the admission code is a fallback at the end, not the page's centre.
        "online": person.attendance_mode is AttendanceMode.ONLINE
        or conference.mode is ConferenceMode.ONLINE,
        "no_venue": conference.mode is ConferenceMode.ONLINE,
        "deleted_by": deleted_by,
        "checkin": code,
        "short_code": grouped(short_code(secret, person.id)),
        "qr": _qr(code),
        "csrf": csrf_token(secret, person.token),
        "base": f"/p/{person.token}",
        # "Fragen? Wenden Sie sich an das Kommunale ...": German needs the article.
        "organiser": organiser_accusative(conference) if language == "de" else conference.organiser,
        "organiser_email": conference.organiser_email,
    }


@router.get("/p/{token}", response_class=HTMLResponse)
async def personal_page(
    request: Request,
    person: Holder,
    session: DbSession,
    settings: AppSettings,
    clock: AppClock,
    templates: RoomTemplates,
) -> HTMLResponse:
    """The person's page: agenda, forum, join buttons, RSVP, consent, check-in code."""
    language, context = await _context(request, session, settings, templates, person, clock())
    return pages.page("participant.html", language, **context)


@router.post("/p/{token}/rsvp", status_code=303)
async def rsvp(
    token: str,
    checked: Checked,
    session: DbSession,
    clock: AppClock,
    mail: Mail,
    answer: Field = "",
) -> Response:
    """Accept, decline or answer tentatively (reminders follow the answer)."""
    if answer not in {choice.value for choice in self_service.ANSWERS}:
        return _see_other(token, "answer_missing")
    person, conference = await self_service.load(session, checked.id)
    await self_service.set_rsvp(session, person, Rsvp(answer), clock())
    await after_change(session, conference, mail, clock(), person_ids=[person.id])
    return _see_other(token, "rsvp_saved")


@router.post("/p/{token}/forum", status_code=303)
async def change_forum(
    token: str,
    checked: Checked,
    session: DbSession,
    clock: AppClock,
    mail: Mail,
    forum: Field = "",
) -> Response:
    """Move to a forum with a free seat; the calendar gets a CANCEL and a REQUEST."""
    person, conference = await self_service.load(session, checked.id)
    now = clock()
    try:
        moved = await self_service.change_forum(session, conference, person, forum, now)
    except self_service.ForumChangeRefused as refused:
        return _see_other(token, refused.reason.value)
    if moved is None:
        return _see_other(token, "forum_unchanged")
    await after_change(session, conference, mail, now, person_ids=[person.id])
    return _see_other(token, "forum_changed")


@router.post("/p/{token}/consent", status_code=303)
async def consent(
    token: str,
    checked: Checked,
    session: DbSession,
    clock: AppClock,
    mail: Mail,
    choice: Field = "",
) -> Response:
    """Withdraw consent (no further reminders), or give it again."""
    if choice not in ("give", "withdraw"):
        return _see_other(token, "answer_missing")
    person, conference = await self_service.load(session, checked.id)
    if choice == "give":
        await self_service.give_consent(session, person, clock())
    else:
        await self_service.withdraw_consent(session, person, clock())
    await after_change(session, conference, mail, clock(), person_ids=[person.id])
    return _see_other(token, "consent_given" if choice == "give" else "consent_withdrawn")


@router.post("/p/{token}/language", status_code=303)
async def language(
    token: str,
    checked: Checked,
    session: DbSession,
    lang: Field = "",
) -> Response:
    """Store the person's language for this page and their mails."""
    if lang not in pages.LANGUAGES:
        return _see_other(token, "answer_missing")
    person, _ = await self_service.load(session, checked.id)
    await self_service.set_language(session, person, Language(lang))
    return _see_other(token, "language_saved")


@router.get("/p/{token}/calendar.ics", response_model=None)
async def calendar(
    token: str, found: Holder, session: DbSession, settings: AppSettings, clock: AppClock
) -> Response:
    """All the person's sessions as one iCalendar file (same UIDs as the invitation).

    METHOD:PUBLISH, not REQUEST: a downloaded file is no message from the organiser, so it
    carries no ATTENDEE and nothing to answer; the UIDs and SEQUENCEs are the invitation's,
    so importing it updates the entries the mail made instead of doubling them.
    """
    person, conference = await self_service.load(session, found.id)
    sender_name, sender_address = parseaddr(settings.mail_from)
    base, domain = settings.base_url, message_domain(settings.mail_from)
    events = await self_service.calendar_events(session, conference, person, base, domain)
    if not events:
        return _see_other(token, "calendar_empty")
    body = build_calendar(
        "PUBLISH",
        events,
        timezone=conference.timezone,
        organizer=Party(email=sender_address, name=conference.organiser or sender_name),
        stamp=clock(),
    )
    name = re.sub(r"[^a-z0-9-]", "", conference.slug.lower()) or "konferenz"
    headers = {**pages.PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{name}.ics"'}
    # RFC 5545 3.7.2: the METHOD property and the media type's "method" go together.
    return Response(body, media_type=CALENDAR_MEDIA_TYPE, headers=headers)
