"""/admin/{slug}/team: who works on the conference, inviting staff, taking a role back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from orchestrator.accounts import team
from orchestrator.accounts.mail import send_link
from orchestrator.accounts.models import LinkPurpose
from orchestrator.errors import InvalidInputError
from orchestrator.web import pages
from orchestrator.web.deps import ConferenceBySlug, DbSession
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffContext,
    StaffRoute,
    StaffSession,
    app_settings,
    now_of,
    require_organiser,
    require_staff_session,
)
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/{slug}/team",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)
DONE = frozenset({"invited", "added", "revoked"})


async def _page(
    request: Request,
    db: DbSession,
    staff: StaffSession,
    conference: ConferenceBySlug,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    values: dict[str, object] = {"error": "", "field": "", "form": {}, "done": ""}
    values |= context
    members = await team.team_of(db, conference)
    return workspace_page(
        request,
        "staff/team.html",
        staff,
        status_code,
        conference=conference,
        section="team",
        members=members,
        forum_options=[(forum.key, forum.title) for forum in conference.forums],
        **values,
    )


@router.get("", response_class=HTMLResponse)
async def team_page(
    request: Request, db: DbSession, staff: StaffContext, conference: ConferenceBySlug
) -> HTMLResponse:
    """The team and the form to invite someone."""
    done = request.query_params.get("done", "")
    return await _page(request, db, staff, conference, done=done if done in DONE else "")


@router.post("", response_class=HTMLResponse)
async def invite(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    email: Annotated[str, Form(max_length=300)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    forum: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Give someone a role; a new account gets its set-password link by mail."""
    now, settings = now_of(request), app_settings(request)
    form = {"email": email, "name": name, "role": role, "forum": forum}
    try:
        user = await team.invite(
            db, conference, email, role, now, forum_key=forum, name=name,
            inviter=staff.principal.user_id,
        )  # fmt: skip
    except InvalidInputError as problem:
        field = str((problem.details or {}).get("field", ""))
        return await _page(
            request, db, staff, conference, 422, error=problem.message, field=field, form=form
        )
    new = user.password_hash is None  # no password yet: (again) the link to choose one
    if new:
        await send_link(
            db, user, LinkPurpose.SET_PASSWORD, now,
            base_url=settings.base_url, sender=settings.mail_from,
        )  # fmt: skip
    done = "invited" if new else "added"
    location = f"/admin/{conference.slug}/team?done={done}"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


@router.post("/{grant_id}/revoke")
async def revoke(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    grant_id: int,
) -> Response:
    """Take one role in this conference back."""
    await team.revoke(db, conference, grant_id, now_of(request), staff.principal.user_id)
    location = f"/admin/{conference.slug}/team?done=revoked"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)
