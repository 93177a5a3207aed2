"""The staff check-in page at the venue: scan a QR code, or search by name, per session.

`GET /admin/{slug}/checkin` shows the page; `POST .../checkin` checks a person in by the
scanned or typed `code` (the signed QR code, or the short code read out) or a `person_id`
from the search, `POST .../checkout` records when they left, `POST .../checkin/undo` takes a
check-in back (kept with who and when). The POSTs take a form (the page works without
JavaScript) or JSON with `X-CSRF-Token` (the camera scanner, static/checkin.js), and answer
in kind.
"""

from __future__ import annotations

import gettext
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance import checkin
from orchestrator.attendance.checkin import CheckInResult, Method
from orchestrator.attendance.models import CheckIn
from orchestrator.conferences.models import Conference, ConferenceSession, SessionStatus
from orchestrator.errors import InvalidInputError, OrchestratorError
from orchestrator.participants.models import AssignmentStatus, Person
from orchestrator.web import pages
from orchestrator.web.deps import AppClock, AppSettings, ConferenceBySlug, DbSession
from orchestrator.web.staff import (
    CsrfChecked,
    StaffContext,
    StaffRoute,
    StaffSession,
    require_checkin,
    require_staff_session,
    staff_language,
)
from orchestrator.web.staff.attendance import actor
from orchestrator.web.staff.moments import moment_formatter
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/{slug}",
    route_class=StaffRoute,
    include_in_schema=False,
    # The session first: an anonymous visitor is sent to sign in before the slug is looked up.
    dependencies=[Depends(require_staff_session), Depends(require_checkin)],
)

MAX_FIELD = 200
# What staff read for each refusal (msgids, translated per page language).
REFUSALS = {
    "invalid_code": "This is not a valid check-in code.",
    "unknown_person": "This person is not registered for this conference.",
    "unknown_session": "Please choose a session of this conference.",
    "session_cancelled": "This session has been cancelled.",
    "not_checked_in": "This person is not checked in for this session.",
    "invalid_left_at": "The time must lie between the arrival and now.",
    "missing_input": "Please scan or type a code, or choose a person.",
    "look_alike": "Codes contain no 0, O, 1, I or L. Please check the code and type it again.",
    "wrong_day": "This session takes place on %(day)s: check-ins are taken on that day only.",
    "invalid_input": "Please check your entry: %(detail)s",
}
OUTCOMES = {
    "checked_in": "%(name)s is checked in (%(time)s).",
    "already_checked_in": "%(name)s was already checked in at %(time)s.",
    "checked_out": "%(name)s left at %(time)s.",
    "undone": "The check-in of %(name)s (%(time)s) is undone.",
}


class MissingInputError(InvalidInputError):
    code = "missing_input"


@lru_cache(maxsize=len(pages.LANGUAGES))
def _translations(language: str) -> gettext.GNUTranslations:
    return pages.load_translations(language)


def translate(language: str, message: str, **values: str) -> str:
    """A message of this page in the language (German when not offered)."""
    if language not in pages.LANGUAGES:
        language = pages.DEFAULT_LANGUAGE
    return _translations(language).gettext(message) % values


@dataclass(frozen=True)
class Notice:
    """The answer to the last action, read out by screen readers (aria-live)."""

    kind: str  # success | info | error
    outcome: str  # checked_in | already_checked_in | checked_out | the refusal's code
    text: str


@dataclass
class View:
    """Everything the page shows for one conference and session."""

    conference: Conference
    sessions: Sequence[ConferenceSession]
    selected: ConferenceSession | None
    query: str = ""
    found: list[tuple[Person, CheckIn | None]] = field(default_factory=list)
    recent: list[CheckInResult] = field(default_factory=list)
    total: int = 0


def _scheduled(conference: Conference) -> list[ConferenceSession]:
    return [s for s in conference.sessions if s.status is SessionStatus.SCHEDULED]


def _pick(conference: Conference, key: str | None, now: datetime) -> ConferenceSession | None:
    """The asked-for session, else the one running now or next today, else the first."""
    scheduled = _scheduled(conference)
    chosen = next((s for s in scheduled if s.key == key), None)
    return chosen or checkin.current_session(conference, now) or next(iter(scheduled), None)


async def _view(
    db: AsyncSession, conference: Conference, key: str | None, query: str, now: datetime
) -> View:
    view = View(conference, _scheduled(conference), _pick(conference, key, now), query.strip())
    if view.selected is None:
        return view
    people = await checkin.search(db, conference, view.query) if view.query else []
    arrivals = await checkin.arrivals(db, view.selected, [p.id for p in people])
    view.found = [(person, arrivals.get(person.id)) for person in people]
    view.recent, view.total = await checkin.recent(db, conference, view.selected.key)
    return view


def forum_of(person: Person, item: ConferenceSession) -> str:
    """The person's forum for a breakout round, or all their forums for any other session."""
    seats = [a for a in person.assignments if a.status is AssignmentStatus.ASSIGNED and a.forum]
    mine = [a for a in seats if a.session_id == item.id] or seats
    return ", ".join(sorted({a.forum.title for a in mine if a.forum}))


def _clock(conference: Conference, moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(conference.timezone)).strftime("%H:%M")


def _render(
    request: Request, staff: StaffSession, view: View, notice: Notice | None, status: int = 200
) -> HTMLResponse:
    conference = view.conference
    return workspace_page(
        request,
        "admin_checkin.html",
        staff,
        status,
        conference=conference,
        section="checkin",
        view=view,
        notice=notice,
        hhmm=lambda moment: _clock(conference, moment),
        forum_of=forum_of,
        when=moment_formatter(staff_language(request, staff), conference.timezone),
        focus_code=notice is not None and notice.outcome not in ("checked_out", "undone"),
    )


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/json")


async def _payload(request: Request) -> dict[str, str]:
    """The submitted fields (form or JSON object), as short strings."""
    raw: Mapping[str, object]
    if _is_json(request):
        try:
            body = await request.json()
        except ValueError:  # not JSON after all: nothing submitted
            body = {}
        raw = body if isinstance(body, dict) else {}
    else:
        raw = await request.form()
    return {k: v.strip()[:MAX_FIELD] for k, v in raw.items() if isinstance(v, str)}


def _person_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise checkin.UnknownPersonError("Unbekannte Person.") from None


def _session_key(conference: Conference, data: Mapping[str, str], now: datetime) -> str:
    if data.get("session"):
        return data["session"]
    current = checkin.current_session(conference, now)
    if current is None:
        raise checkin.UnknownSessionError("Keine Sitzung gewählt.")
    return current.key


def _left_at(conference: Conference, item: ConferenceSession, value: str) -> datetime | None:
    """A wall-clock "left at" (HH:MM) on the session's day, in the conference's time zone."""
    if not value:
        return None
    try:
        clock = time.fromisoformat(value)
    except ValueError:
        raise checkin.InvalidLeaveTimeError("Uhrzeit im Format HH:MM angeben.") from None
    zone = ZoneInfo(conference.timezone)
    day = item.starts_at.astimezone(zone).date()
    return datetime.combine(day, clock.replace(tzinfo=zone))


def _notice(language: str, conference: Conference, result: CheckInResult, outcome: str) -> Notice:
    moment = result.left_at if outcome == "checked_out" and result.left_at else result.arrived_at
    name = result.person.display_name
    text = translate(language, OUTCOMES[outcome], name=name, time=_clock(conference, moment))
    return Notice("info" if result.already else "success", outcome, text)


def _refusal(language: str, error: OrchestratorError) -> Notice:
    message = REFUSALS.get(error.code, "The check-in did not work. Please try again.")
    values: dict[str, str] = {}
    if isinstance(error, checkin.WrongDayError):
        values["day"] = format_date(error.day, format="full", locale=language)
    elif error.code == "invalid_input":
        values["detail"] = error.message
    return Notice("error", error.code, translate(language, message, **values))


def _json(notice: Notice, result: CheckInResult | None, status: int) -> JSONResponse:
    body: dict[str, object] = {"outcome": notice.outcome, "message": notice.text}
    if result is not None:
        body |= {
            "person_id": str(result.person.id),
            "name": result.person.display_name,
            "session": result.session.key,
            "arrived_at": result.arrived_at.isoformat(),
            "left_at": result.left_at.isoformat() if result.left_at else None,
            "method": result.method,
        }
    return JSONResponse(body, status_code=status, headers=pages.PRIVATE_HEADERS)


@dataclass(frozen=True)
class Post:
    """One submitted check-in or check-out and where it happens."""

    staff: StaffSession
    db: AsyncSession
    conference: Conference
    now: datetime
    data: Mapping[str, str]
    language: str


async def _post(
    request: Request, staff: StaffSession, db: AsyncSession, conference: Conference, now: datetime
) -> Post:
    data = await _payload(request)
    return Post(staff, db, conference, now, data, staff_language(request, staff))


async def _reply(
    request: Request, post: Post, notice: Notice, result: CheckInResult | None, status: int
) -> Response:
    """The same answer as JSON (fetch) or as the re-rendered page (form)."""
    if _is_json(request):
        return _json(notice, result, status)
    data = post.data
    view = await _view(post.db, post.conference, data.get("session"), data.get("q", ""), post.now)
    return _render(request, post.staff, view, notice, status)


async def _refused(request: Request, post: Post, error: OrchestratorError) -> Response:
    return await _reply(request, post, _refusal(post.language, error), None, error.status_code)


async def _done(request: Request, post: Post, result: CheckInResult, outcome: str) -> Response:
    notice = _notice(post.language, post.conference, result, outcome)
    return await _reply(request, post, notice, result, 200)


async def _check_in(post: Post, secret: str) -> CheckInResult:
    db, conference, data, now = post.db, post.conference, post.data, post.now
    key = _session_key(conference, data, now)
    if data.get("code"):
        return await checkin.check_in_by_code(db, conference, secret, data["code"], key, now)
    if data.get("person_id"):
        person = _person_id(data["person_id"])
        return await checkin.check_in(db, conference, person, key, Method.SEARCH, now)
    raise MissingInputError("Code oder Person fehlt.")


async def _check_out(post: Post) -> CheckInResult:
    conference, data, now = post.conference, post.data, post.now
    key = _session_key(conference, data, now)
    person = _person_id(data.get("person_id", ""))
    left = _left_at(conference, checkin.session_for(conference, key), data.get("at", ""))
    return await checkin.check_out(post.db, conference, person, key, now, left)


async def _undo(post: Post) -> CheckInResult:
    conference, data, now = post.conference, post.data, post.now
    key = _session_key(conference, data, now)
    person = _person_id(data.get("person_id", ""))
    who, why = actor(post.staff), data.get("reason", "")
    return await checkin.undo_check_in(post.db, conference, person, key, who, why, now)


@router.get("/checkin", response_class=HTMLResponse)
async def checkin_page(
    request: Request,
    staff: StaffContext,
    conference: ConferenceBySlug,
    db: DbSession,
    clock: AppClock,
    session_key: Annotated[str | None, Query(alias="session", max_length=40)] = None,
    q: Annotated[str, Query(max_length=MAX_FIELD)] = "",
) -> HTMLResponse:
    """The check-in page, preselected to the session running now (or next today)."""
    view = await _view(db, conference, session_key, q, clock())
    return _render(request, staff, view, None)


@router.post("/checkin", response_class=HTMLResponse)
async def check_in(
    request: Request,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    db: DbSession,
    clock: AppClock,
    settings: AppSettings,
) -> Response:
    """Check a person in by QR `code` or by `person_id` for the `session` (key)."""
    post = await _post(request, staff, db, conference, clock())
    try:
        result = await _check_in(post, settings.require("secret_key"))
    except OrchestratorError as error:
        return await _refused(request, post, error)
    return await _done(
        request, post, result, "already_checked_in" if result.already else "checked_in"
    )


@router.post("/checkout", response_class=HTMLResponse)
async def check_out(
    request: Request,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    db: DbSession,
    clock: AppClock,
) -> Response:
    """Record that a checked-in person left (now, or at the optional `at` HH:MM)."""
    post = await _post(request, staff, db, conference, clock())
    try:
        result = await _check_out(post)
    except OrchestratorError as error:
        return await _refused(request, post, error)
    return await _done(request, post, result, "checked_out")


@router.post("/checkin/undo", response_class=HTMLResponse)
async def undo_check_in(
    request: Request,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    db: DbSession,
    clock: AppClock,
) -> Response:
    """Take back a check-in made by mistake (who and when are kept; `reason` optional)."""
    post = await _post(request, staff, db, conference, clock())
    try:
        result = await _undo(post)
    except OrchestratorError as error:
        return await _refused(request, post, error)
    return await _done(request, post, result, "undone")
