"""The organiser's home (/admin) and each conference's overview (/admin/{slug})."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from orchestrator.conferences import repository as conferences
from orchestrator.conferences.progress import next_step, progress_of
from orchestrator.web.deps import ConferenceBySlug, DbSession
from orchestrator.web.staff.auth import (
    StaffContext,
    StaffRoute,
    StaffSession,
    admin_page,
    now_of,
    require_organiser,
    require_staff_session,
)
from orchestrator.web.staff.sections import SECTIONS_BUILT

router = APIRouter(prefix="/admin", route_class=StaffRoute, include_in_schema=False)


def workspace_page(
    request: Request, name: str, staff: StaffSession, status_code: int = 200, /, **context: Any
) -> HTMLResponse:
    """A workspace page: the frame's context (CSRF token, built sections) filled in."""
    return admin_page(
        request,
        name,
        status_code,
        staff=staff,
        csrf_token=staff.csrf_token,
        sections_built=SECTIONS_BUILT,
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def home(request: Request, db: DbSession, staff: StaffContext) -> HTMLResponse:
    """The staff start page: each conference this person works on, where it stands, what next."""
    principal, now = staff.principal, now_of(request)
    cards = []
    for conference in await conferences.list_all(db):
        if not (principal.organises_everything or conference.id in principal.conference_ids()):
            continue
        progress = None
        if principal.organises(conference.id):
            progress = await progress_of(db, conference)
        step = next_step(progress, now) if progress else None
        cards.append((conference, progress, step))
    return workspace_page(request, "staff/home.html", staff, cards=cards)


@router.get(
    "/{slug}",
    response_class=HTMLResponse,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)
async def overview(
    request: Request,
    db: DbSession,
    staff: Annotated[StaffSession, Depends(require_organiser)],
    conference: ConferenceBySlug,
) -> HTMLResponse:
    """A conference at a glance: its figures and the next thing to do."""
    progress = await progress_of(db, conference)
    step = next_step(progress, now_of(request))
    return workspace_page(
        request,
        "staff/overview.html",
        staff,
        conference=conference,
        section="overview",
        progress=progress,
        step=step,
    )
