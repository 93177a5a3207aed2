"""/admin/account: one's own language, password and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from orchestrator.accounts import service as accounts
from orchestrator.accounts import team
from orchestrator.accounts.models import StaffUser
from orchestrator.errors import InvalidInputError, NotFoundError
from orchestrator.web import pages
from orchestrator.web.deps import DbSession
from orchestrator.web.staff.auth import (
    COOKIE,
    CsrfChecked,
    StaffContext,
    StaffRoute,
    StaffSession,
    client_address,
    now_of,
    require_staff_session,
    set_cookie,
)
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/account",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session)],
)
FIELD_MAX = 300
DONE = frozenset({"language", "password", "revoked"})


async def _user(db: DbSession, staff: StaffSession) -> StaffUser:
    user = await db.get(StaffUser, staff.principal.user_id or 0)
    if user is None:
        raise NotFoundError("Kein Zugang. / No account.")
    return user


async def _page(
    request: Request,
    db: DbSession,
    staff: StaffSession,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    user = await _user(db, staff)
    values: dict[str, object] = {"error": "", "new_token": "", "done": ""}
    values |= context
    tokens = await team.tokens_of(db, user.id)
    return workspace_page(
        request, "staff/account.html", staff, status_code, user=user, tokens=tokens, **values
    )


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/account?done={done}", 303, headers=pages.PRIVATE_HEADERS)


@router.get("", response_class=HTMLResponse)
async def account(request: Request, db: DbSession, staff: StaffContext) -> HTMLResponse:
    """The account page."""
    done = request.query_params.get("done", "")
    return await _page(request, db, staff, done=done if done in DONE else "")


@router.post("/language")
async def language(
    db: DbSession,
    staff: CsrfChecked,
    value: Annotated[str, Form(alias="language", max_length=10)] = "",
) -> Response:
    """German, English, or (empty) the browser's language for the staff pages."""
    user = await _user(db, staff)
    user.language = value if value in accounts.LANGUAGES else None
    return _back("language")


@router.post("/password", response_class=HTMLResponse)
async def password(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    old: Annotated[str, Form(alias="old_password", max_length=FIELD_MAX)] = "",
    new: Annotated[str, Form(alias="new_password", max_length=FIELD_MAX)] = "",
    repeat: Annotated[str, Form(max_length=FIELD_MAX)] = "",
) -> Response:
    """Change the password: every session ends, this browser gets a new one."""
    user, now = await _user(db, staff), now_of(request)
    if new != repeat:
        return await _page(request, db, staff, 422, error="mismatch")
    try:
        await accounts.change_password(db, user, old, new, now, client_address(request))
    except InvalidInputError as problem:
        field = (problem.details or {}).get("field", "")
        return await _page(request, db, staff, 422, error=f"bad_{field}")
    response = _back("password")
    token = await accounts.open_login(db, user, now)
    set_cookie(request, response, COOKIE, token, int(accounts.SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/tokens", response_class=HTMLResponse)
async def new_token(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    label: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """A new API token, shown once on the answer page (only its hash is kept)."""
    user = await _user(db, staff)
    token = await accounts.make_api_token(db, user, label or "API", now_of(request))
    return await _page(request, db, staff, new_token=token)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, db: DbSession, staff: CsrfChecked, token_id: int
) -> Response:
    """Revoke one of one's own API tokens."""
    await accounts.revoke_api_token(db, await _user(db, staff), token_id, now_of(request))
    return _back("revoked")
