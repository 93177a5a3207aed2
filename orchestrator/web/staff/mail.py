"""Invitations and mail of a conference (/admin/{slug}/mail): send invitations and watch them
go out, see what failed and send it again, preview any mail, browse the outbox.

Sending starts `invitations.runs.invite_everyone` in the background (mail_runs) and
returns at once; the page follows the counts over server-sent events (static/mail-area.js)
and, without JavaScript, shows them as they were with a link to reload.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from orchestrator.invitations import selection
from orchestrator.mail import preview as previews
from orchestrator.mail.models import OutboxState
from orchestrator.mail.outbox import counts_by_state, page_of_outbox, requeue_failed
from orchestrator.mail.rendering import LANGUAGES, Rendered
from orchestrator.web import pages
from orchestrator.web.deps import AppSettings, ConferenceBySlug, DbSession
from orchestrator.web.staff import mail_runs
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffRoute,
    StaffSession,
    now_of,
    require_organiser,
    require_staff_session,
)
from orchestrator.web.staff.mail_frame import frame, with_frames
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/{slug}/mail",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)

Organiser = Annotated[StaffSession, Depends(require_organiser)]
FAILED_SHOWN = 50
PAGE_SIZE = 50
STATUSES = frozenset({"started", "running", "nobody", "whom", "requeued", "none_failed"})
STREAM_HEADERS = {**pages.PRIVATE_HEADERS, "X-Accel-Buffering": "no"}


def _base(slug: str) -> str:
    return f"/admin/{slug}/mail"


def _back(slug: str, status: str, count: int | None = None) -> RedirectResponse:
    query = {"status": status} | ({"count": str(count)} if count is not None else {})
    anchor = "failed" if status in ("requeued", "none_failed") else "send"
    location = f"{_base(slug)}?{urlencode(query)}#{anchor}"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


def _number(value: str) -> int | None:
    return int(value) if value.isdecimal() and 0 < len(value) < 10 else None


@router.get("", response_class=HTMLResponse)
async def mail_home(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    status: Annotated[str, Query(max_length=20)] = "",
    count: Annotated[str, Query(max_length=9)] = "",
) -> HTMLResponse:
    """The area: whom to invite, the run's progress, failed mail, preview and outbox links."""
    figures = await mail_runs.figures(request.app, conference.id)
    by_forum = await selection.not_invited_by_forum(db, conference.id)
    failed = await page_of_outbox(db, conference.id, state=OutboxState.FAILED, limit=FAILED_SHOWN)
    return workspace_page(
        request,
        "staff/mail.html",
        staff,
        conference=conference,
        section="mail",
        figures=figures,
        not_invited=await selection.not_invited_count(db, conference.id),
        forums=[(forum, by_forum.get(forum.id, 0)) for forum in conference.forums],
        failed=failed,
        outbox=await counts_by_state(db, conference.id),
        status=status if status in STATUSES else "",
        count=_number(count) or 0,
        kinds=previews.PREVIEW_KINDS,
    )


@router.post("/send")
async def send(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    whom: Annotated[str, Form(max_length=20)] = "",
) -> RedirectResponse:
    """Start inviting everyone not yet invited, or those of one forum; returns at once."""
    person_ids = None
    if whom != "all":
        forum_id = _number(whom)
        if forum_id is None or forum_id not in {forum.id for forum in conference.forums}:
            return _back(conference.slug, "whom")
        person_ids = await selection.not_invited_in_forum(db, conference.id, forum_id)
        if not person_ids:
            return _back(conference.slug, "nobody")
    elif await selection.not_invited_count(db, conference.id) == 0:
        return _back(conference.slug, "nobody")
    started = mail_runs.start(request.app, conference, person_ids)
    return _back(conference.slug, "started" if started else "running")


@router.get("/progress")
async def progress(request: Request, conference: ConferenceBySlug) -> StreamingResponse:
    """Server-sent events: the invitation counts as they change, until all are out."""
    events = mail_runs.progress_events(request.app, conference.id)
    return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.post("/retry")
async def retry(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    message: Annotated[str, Form(max_length=12)] = "",
) -> RedirectResponse:
    """Send failed mail again: one message (its id), or all that failed."""
    ids = None
    if message:
        one = _number(message)
        ids = [one] if one is not None else []
    count = await requeue_failed(db, conference.id, now_of(request), ids)
    if not count:
        return _back(conference.slug, "none_failed")
    return _back(conference.slug, "requeued", count)


async def _preview(
    request: Request,
    db: DbSession,
    conference: ConferenceBySlug,
    settings: AppSettings,
    kind: str,
    language: str,
    email: str,
) -> tuple[Rendered | None, str]:
    """The mail, or why there is none ("email": no such person; else the reason)."""
    person = previews.sample_person(conference, language)
    if email.strip():
        found = await previews.find_person(db, conference.id, email)
        if found is None:
            return None, "email"
        person = found
    try:
        rendered = await previews.preview(
            db,
            conference,
            kind,
            language,
            person,
            base_url=settings.base_url,
            now=now_of(request),
        )
    except previews.PreviewError as error:
        return None, str(error)
    return rendered, ""


PreviewKind = Annotated[str, Query(max_length=30)]
PreviewLanguage = Annotated[str, Query(max_length=5)]
PreviewEmail = Annotated[str, Query(max_length=254)]


@router.get("/preview", response_class=HTMLResponse)
async def preview(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    settings: AppSettings,
    kind: PreviewKind = "invitation",
    language: PreviewLanguage = "de",
    email: PreviewEmail = "",
) -> HTMLResponse:
    """A mail as its recipient sees it: the text part, and the HTML part in a safe frame."""
    kind = kind if kind in previews.PREVIEW_KINDS else "invitation"
    language = language if language in LANGUAGES else "de"
    rendered, problem = await _preview(request, db, conference, settings, kind, language, email)
    query = urlencode({"kind": kind, "language": language, "email": email.strip()})
    response = workspace_page(
        request,
        "staff/mail_preview.html",
        staff,
        conference=conference,
        section="mail",
        kinds=previews.PREVIEW_KINDS,
        kind=kind,
        mail_language=language,
        email=email.strip(),
        rendered=rendered,
        problem=problem,
        frame_src=f"{_base(conference.slug)}/preview/html?{query}",
    )
    return with_frames(response)


@router.get("/preview/html", response_class=HTMLResponse)
async def preview_html(
    request: Request,
    db: DbSession,
    conference: ConferenceBySlug,
    settings: AppSettings,
    kind: PreviewKind = "invitation",
    language: PreviewLanguage = "de",
    email: PreviewEmail = "",
) -> HTMLResponse:
    """The HTML part alone, for the sandboxed frame (no script may run in it)."""
    rendered, _ = await _preview(request, db, conference, settings, kind, language, email)
    return frame(rendered.html if rendered else "<!doctype html><title>-</title>")


@router.get("/outbox", response_class=HTMLResponse)
async def outbox(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    state: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[str, Query(max_length=9)] = "1",
) -> HTMLResponse:
    """The conference's mail, newest first, of one state or all, a page at a time."""
    chosen = OutboxState(state) if state in {s.value for s in OutboxState} else None
    number = _number(page) or 1
    zone = ZoneInfo(conference.timezone)
    found = await page_of_outbox(
        db, conference.id, state=chosen, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return workspace_page(
        request,
        "staff/mail_outbox.html",
        staff,
        conference=conference,
        section="mail",
        counts=await counts_by_state(db, conference.id),
        state=chosen.value if chosen else "",
        found=found,
        page=number,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        first=(number - 1) * PAGE_SIZE + 1,
        when=lambda moment: moment.astimezone(zone).strftime("%d.%m.%Y, %H:%M"),
    )
