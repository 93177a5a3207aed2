"""Answers and attendance (/admin/{slug}/attendance): the RSVP funnel, the attendance table,
organisers' decisions on one entry (excuse, override, undo a check-in) and the downloads.

Forms post and redirect back with `?done=<what>` (a fixed set of messages, never user text);
a refused form shows the entry again with the error beside its field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance import checkin, exports, listing, overrides
from orchestrator.attendance.answers import rsvp_funnel
from orchestrator.attendance.models import AttendanceStatus
from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import session_by_key
from orchestrator.errors import InvalidInputError, NotFoundError, OrchestratorError
from orchestrator.web import pages
from orchestrator.web.deps import AppClock, ConferenceBySlug, DbSession
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffRoute,
    StaffSession,
    require_organiser,
    require_staff_session,
    staff_language,
)
from orchestrator.web.staff.moments import moment_formatter
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/{slug}/attendance",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)

Organiser = Annotated[StaffSession, Depends(require_organiser)]
Text = Annotated[str, Query(max_length=40)]
Reason = Annotated[str, Form()]

# What a redirect's `?done=` says (msgids), and whether it is good news.
DONE = {
    "excused": ("success", "The person is excused for this session."),
    "overridden": ("success", "The status is changed."),
    "undone": ("success", "The check-in is undone."),
    "missing": ("error", "This entry does not exist (any more)."),
}
FIELD_ERRORS = {
    "reason": "Please give a reason (at most 1000 characters, one line).",
    "status": "Please choose a status.",
    "checkin": "This person is not checked in for this session.",
}


def actor(staff: StaffSession) -> str:
    """Who decided, as kept in the audit: the staff user's email and account number."""
    principal = staff.principal
    return f"{principal.email} (#{principal.user_id})" if principal.user_id else principal.email


def _flash(request: Request, staff: StaffSession, done: str) -> list[tuple[str, str]]:
    if done not in DONE:
        return []
    kind, message = DONE[done]
    translations = pages.load_translations(staff_language(request, staff))
    return [(kind, translations.gettext(message))]


def _query(**values: str | int) -> str:
    kept = {key: value for key, value in values.items() if value not in ("", 0, 1)}
    return urlencode(kept)


def _entry_url(conference: Conference, person_id: uuid.UUID, session_key: str) -> str:
    return f"/admin/{conference.slug}/attendance/entry/{person_id}/{session_key}"


@router.get("", response_class=HTMLResponse)
async def attendance_page(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    clock: AppClock,
    session: Text = "",
    forum: Text = "",
    status: Text = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Text = "",
) -> HTMLResponse:
    """The funnel of answers, then the attendance table (filtered, 50 rows a page)."""
    error, code = "", 200
    try:
        chosen = listing.filters(conference, session, forum, status)
    except InvalidInputError as refused:
        chosen, code = listing.Filters(), 422
        error = str(refused.message).split(":", 1)[0]
    rows = await listing.filtered_rows(db, conference, chosen, clock())
    shown = listing.page_of(rows, page)
    query = _query(session=chosen.session, forum=chosen.forum, status=chosen.status)
    return workspace_page(
        request,
        "staff/attendance.html",
        staff,
        code,
        conference=conference,
        section="attendance",
        funnel=await rsvp_funnel(db, conference.id),
        filters=chosen,
        filter_error=error,
        session_options=[(s.key, s.title) for s in conference.sessions if s.status == "scheduled"],
        forum_options=[(forum.key, forum.title) for forum in conference.forums],
        shown=shown,
        query=query,
        page_url=lambda number: (
            "?"
            + _query(session=chosen.session, forum=chosen.forum, status=chosen.status, page=number)
        ),
        entry_url=lambda row: _entry_url(conference, row.person_id, row.session_key),
        flash=_flash(request, staff, done),
    )


def _chosen(conference: Conference, session: str, forum: str, status: str) -> listing.Filters:
    """The filters of a download link (a wrong one downloads everything rather than fail)."""
    try:
        return listing.filters(conference, session, forum, status)
    except InvalidInputError:
        return listing.Filters()


async def _download(
    db: AsyncSession,
    conference: Conference,
    now: datetime,
    chosen: listing.Filters,
    extension: str,
) -> Response:
    rows = await listing.filtered_rows(db, conference, chosen, now)
    if extension == "csv":
        body, media_type = exports.to_csv(rows), exports.CSV_TYPE
    else:
        body, media_type = exports.to_xlsx(rows, exports.summary(rows)), exports.XLSX_TYPE
    name = exports.download_name(conference.slug, extension)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', **pages.PRIVATE_HEADERS}
    return Response(body, media_type=media_type, headers=headers)


@router.get("/export.csv", response_class=Response)
async def export_csv(
    db: DbSession,
    conference: ConferenceBySlug,
    clock: AppClock,
    session: Text = "",
    forum: Text = "",
    status: Text = "",
) -> Response:
    """The (filtered) table as CSV for German Excel."""
    chosen = _chosen(conference, session, forum, status)
    return await _download(db, conference, clock(), chosen, "csv")


@router.get("/export.xlsx", response_class=Response)
async def export_xlsx(
    db: DbSession,
    conference: ConferenceBySlug,
    clock: AppClock,
    session: Text = "",
    forum: Text = "",
    status: Text = "",
) -> Response:
    """The (filtered) table as an Excel workbook with the per-forum sheet."""
    chosen = _chosen(conference, session, forum, status)
    return await _download(db, conference, clock(), chosen, "xlsx")


def _person_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError("Unbekannte Person.") from None


def _missing(conference: Conference) -> RedirectResponse:
    location = f"/admin/{conference.slug}/attendance?done=missing"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


async def _entry(
    request: Request,
    db: AsyncSession,
    staff: StaffSession,
    conference: Conference,
    now_key: tuple[datetime, str, str],
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    """One person at one session: the status, its history and the forms to change it."""
    now, person, key = now_key
    try:
        person_id = _person_id(person)
        item = session_by_key(conference, key)
        row = await listing.row_of(db, conference, person_id, item.key, now)
    except NotFoundError:
        return _missing(conference)
    translations = pages.load_translations(staff_language(request, staff))
    messages = {field: translations.gettext(FIELD_ERRORS[field]) for field in errors or {}}
    return workspace_page(
        request,
        "staff/attendance_entry.html",
        staff,
        422 if errors else 200,
        conference=conference,
        section="attendance",
        row=row,
        item=item,
        history=await listing.history(db, person_id, item),
        checked_in=await listing.is_checked_in(db, person_id, item),
        statuses=list(AttendanceStatus),
        errors=messages,
        form=form or {},
        action=_entry_url(conference, person_id, item.key),
        when=moment_formatter(staff_language(request, staff), conference.timezone),
        flash=_flash(request, staff, done),
    )


@router.get("/entry/{person}/{key}", response_class=HTMLResponse)
async def entry_page(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    clock: AppClock,
    person: str,
    key: str,
    done: Text = "",
) -> Response:
    """The page of one entry of the table, with the decisions made about it."""
    return await _entry(request, db, staff, conference, (clock(), person, key), done=done)


def _field_of(error: OrchestratorError) -> str:
    if isinstance(error, checkin.NotCheckedInError):
        return "checkin"
    return "status" if error.message.startswith("status") else "reason"


async def _decide(
    request: Request,
    db: AsyncSession,
    staff: StaffSession,
    conference: Conference,
    now_key: tuple[datetime, str, str],
    action: tuple[str, str, str],
) -> Response:
    """Apply one decision (excuse, override or undo); redirect, or show the entry's error."""
    now, person, key = now_key
    what, status, reason = action
    try:
        person_id = _person_id(person)
        item = session_by_key(conference, key)
        await listing.row_of(db, conference, person_id, item.key, now)
    except NotFoundError:
        return _missing(conference)
    try:
        async with db.begin_nested():
            if what == "undone":
                await checkin.undo_check_in(
                    db, conference, person_id, item.key, actor(staff), reason, now
                )
            else:
                await overrides.override(db, person_id, item.id, status, reason, actor(staff))
    except (InvalidInputError, checkin.NotCheckedInError, checkin.SessionCancelledError) as error:
        form = {"form": what, "status": status, "reason": reason}
        errors = {_field_of(error): error.message}
        return await _entry(request, db, staff, conference, now_key, errors=errors, form=form)
    location = _entry_url(conference, person_id, item.key) + f"?done={what}"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


@router.post("/entry/{person}/{key}/excuse", response_class=HTMLResponse)
async def excuse(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    clock: AppClock,
    person: str,
    key: str,
    reason: Reason = "",
) -> Response:
    """Excuse the person for the session (an override to "excused" with the reason)."""
    action = ("excused", AttendanceStatus.EXCUSED.value, reason)
    return await _decide(request, db, staff, conference, (clock(), person, key), action)


@router.post("/entry/{person}/{key}/override", response_class=HTMLResponse)
async def override(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    clock: AppClock,
    person: str,
    key: str,
    status: Annotated[str, Form()] = "",
    reason: Reason = "",
) -> Response:
    """Set the person's status at the session, with the reason (the latest decision wins)."""
    action = ("overridden", status, reason)
    return await _decide(request, db, staff, conference, (clock(), person, key), action)


@router.post("/entry/{person}/{key}/undo-checkin", response_class=HTMLResponse)
async def undo_checkin(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    clock: AppClock,
    person: str,
    key: str,
    reason: Reason = "",
) -> Response:
    """Take back the person's check-in for the session (kept in the history)."""
    action = ("undone", "", reason)
    return await _decide(request, db, staff, conference, (clock(), person, key), action)
