"""The organiser's forums (/admin/{slug}/forums): fill, waiting lists, the balancer, placements.

The balancer runs in two steps: a preview (GET, nothing stored) and the run (POST with the
preview's digest; refused when the preview no longer holds). Placements are organiser
overrides (`set_override`); every change is followed by `followups.after_change`, which
queues the calendar mails and the waiting-list notices.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.participants.forum_board import board
from orchestrator.rebalancing import PersonUnknownError, apply, place_person, preview
from orchestrator.web import pages
from orchestrator.web.deps import AppSettings, ConferenceBySlug, DbSession, Mail
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffRoute,
    StaffSession,
    now_of,
    require_organiser,
    require_staff_session,
)
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/{slug}/forums",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)

Organiser = Annotated[StaffSession, Depends(require_organiser)]
OverflowChoice = Literal["most_room", "waitlist"]
FIELD_MAX = 300

# The page's status keys and their flash kind (the texts are in the templates).
STATUSES = {
    "balanced": "success",
    "placed": "success",
    "waitlisted": "success",
    "stale": "error",
    "person_unknown": "error",
    "forum_unknown": "error",
    "forum_full": "error",
    "no_rounds": "error",
}


def _see_other(slug: str, query: str, path: str = "") -> Response:
    return RedirectResponse(
        f"/admin/{slug}/forums{path}?{query}", status_code=303, headers=pages.PRIVATE_HEADERS
    )


def _status(request: Request) -> tuple[str, int]:
    status = request.query_params.get("status", "")
    mails = request.query_params.get("mails", "")
    return (status if status in STATUSES else ""), int(mails) if mails.isdigit() else 0


@router.get("", response_class=HTMLResponse)
async def forums_page(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    settings: AppSettings,
) -> HTMLResponse:
    """Each round: forums' fill and seat origins, the waiting list, the forms to act."""
    rounds = await board(db, conference)
    status, mails = _status(request)
    return workspace_page(
        request,
        "staff/forums.html",
        staff,
        conference=conference,
        section="forums",
        rounds=rounds,
        status=status,
        status_kind=STATUSES.get(status, ""),
        mails=mails,
        overflow=settings.assignment_overflow,
    )


@router.get("/balance", response_class=HTMLResponse)
async def balance_preview(
    request: Request,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    settings: AppSettings,
    mail: Mail,
    overflow: Annotated[OverflowChoice | None, Query()] = None,
) -> HTMLResponse:
    """What a balancer run would change and send; nothing is stored."""
    chosen = overflow or settings.assignment_overflow
    shown = await preview(db, conference, mail, now_of(request), overflow=chosen)
    status, _ = _status(request)
    return workspace_page(
        request,
        "staff/forums_balance.html",
        staff,
        conference=conference,
        section="forums",
        preview=shown,
        overflow=chosen,
        status=status,
    )


@router.post("/balance", status_code=303)
async def balance_apply(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    mail: Mail,
    overflow: Annotated[OverflowChoice, Form()] = "most_room",
    digest: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Run the balancer as previewed (refused when the preview no longer holds)."""
    try:
        done = await apply(db, conference, mail, now_of(request), overflow=overflow, digest=digest)
    except ConflictError:
        return _see_other(conference.slug, f"overflow={overflow}&status=stale", "/balance")
    return _see_other(conference.slug, f"status=balanced&mails={sum(done.mails.values())}")


@router.post("/place", status_code=303)
async def place(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    mail: Mail,
    person: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    forum: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    force: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Place, move or promote a person (email or id); an empty forum: the waiting list."""
    key = forum.strip() or None
    try:
        placed = await place_person(
            db, conference, mail, now_of(request), person, key, force=bool(force)
        )
    except PersonUnknownError:
        return _see_other(conference.slug, "status=person_unknown")
    except NotFoundError:
        return _see_other(conference.slug, "status=forum_unknown")
    except ConflictError as error:  # a full forum names itself in the details
        return _see_other(
            conference.slug, f"status={'forum_full' if error.details else 'no_rounds'}"
        )
    done = "placed" if placed.forum else "waitlisted"
    return _see_other(conference.slug, f"status={done}&mails={placed.mails}")
