"""Signing in and out of /admin, the staff start page, and passwords set through mailed links."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from orchestrator.accounts import service as accounts
from orchestrator.accounts.mail import send_link
from orchestrator.accounts.models import LinkPurpose, StaffLink, StaffUser
from orchestrator.accounts.service import LoginRefusedError, LoginThrottledError
from orchestrator.errors import InvalidInputError, NotFoundError
from orchestrator.web import pages
from orchestrator.web.deps import DbSession
from orchestrator.web.deps import staff_mac as mac
from orchestrator.web.staff.auth import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_URL,
    CsrfChecked,
    CsrfRefused,
    StaffRoute,
    admin_page,
    app_settings,
    client_address,
    current,
    delete_cookie,
    now_of,
    safe_next,
    set_cookie,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin", route_class=StaffRoute, include_in_schema=False)
FIELD_MAX = 300
RESETS_PER_HOUR = 3
LINK_TOKEN = Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


def _form_nonce(request: Request) -> tuple[str, bool]:
    """The pre-session forms' nonce from its cookie, or a new one (True: set the cookie)."""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if 20 <= len(nonce) <= 64 and nonce.isascii() and nonce.isprintable():
        return nonce, False
    return secrets.token_urlsafe(24), True


def _form_token_valid(request: Request, given: str) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    expected = mac(app_settings(request), "login-csrf", nonce)
    return bool(nonce) and hmac.compare_digest(given.encode(), expected.encode())


def _public_form(
    request: Request, mode: str, status_code: int = 200, /, **context: Any
) -> HTMLResponse:
    """A form shown before sign-in (sign-in, password), bound to the nonce cookie."""
    nonce, fresh = _form_nonce(request)
    token = mac(app_settings(request), "login-csrf", nonce)
    response = admin_page(
        request, "admin_login.html", status_code, mode=mode, csrf_token=token, **context
    )
    if fresh:
        set_cookie(
            request, response, LOGIN_COOKIE, nonce, int(accounts.SESSION_LIFETIME.total_seconds())
        )
    return response


def _login_form(
    request: Request, next_url: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    context = {"next": next_url, "error": "", "email": "", **context}
    return _public_form(request, "form", status_code, **context)


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, db: DbSession, next_url: Annotated[str, Query(alias="next")] = ""
) -> Response:
    """The sign-in form; someone already signed in goes on to `next` or the start page."""
    if await current(request, db) is not None:
        return RedirectResponse(safe_next(next_url), status_code=303, headers=pages.PRIVATE_HEADERS)
    return _login_form(request, safe_next(next_url))


async def _signed_in(request: Request, db: DbSession, user: StaffUser, next_url: str) -> Response:
    token = await accounts.open_login(db, user, now_of(request))
    response = RedirectResponse(next_url, status_code=303, headers=pages.PRIVATE_HEADERS)
    set_cookie(request, response, COOKIE, token, int(accounts.SESSION_LIFETIME.total_seconds()))
    delete_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    password: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    csrf_token: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    """Check email and password; on success set the session cookie and go on to `next`."""
    target = safe_next(next_url)
    if not _form_token_valid(request, csrf_token):
        raise CsrfRefused
    try:
        user = await accounts.authenticate(
            db, email, password, client_address(request), now_of(request)
        )
    except LoginThrottledError as error:
        log.warning("staff.login_throttled", extra={"client": client_address(request)})
        response = admin_page(request, "admin_login.html", 429, mode="throttled", csrf_token="")
        response.headers["Retry-After"] = str(max(1, int(error.retry_after.total_seconds()) + 1))
        return response
    except LoginRefusedError:
        log.warning("staff.login_failed", extra={"client": client_address(request)})
        return _login_form(request, target, 401, error="wrong_login", email=email.strip())
    log.info("staff.logged_in", extra={"client": client_address(request), "user": user.id})
    return await _signed_in(request, db, user, target)


@router.post("/logout")
async def logout(request: Request, db: DbSession, staff: CsrfChecked) -> Response:
    """End this session (on the server: the cookie is worthless from now on)."""
    await accounts.close_login(
        db, staff.token, staff.principal.user_id, now_of(request), client_address(request)
    )
    response = RedirectResponse(LOGIN_URL, status_code=303, headers=pages.PRIVATE_HEADERS)
    delete_cookie(request, response, COOKIE)
    log.info("staff.logged_out", extra={"user": staff.principal.user_id})
    return response


@router.get("/password/{token}", response_class=HTMLResponse)
async def password_page(
    request: Request, db: DbSession, token: Annotated[str, LINK_TOKEN]
) -> HTMLResponse:
    """The form behind a mailed link: choose a password."""
    try:
        user = await accounts.link_user(db, token, now_of(request))
    except NotFoundError:
        return admin_page(request, "admin_login.html", 404, mode="link_invalid", csrf_token="")
    return _public_form(request, "password", email=user.email, error="", token=token)


@router.post("/password/{token}", response_class=HTMLResponse)
async def set_password(
    request: Request,
    db: DbSession,
    token: Annotated[str, LINK_TOKEN],
    password: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    repeat: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    csrf_token: Annotated[str, Form(max_length=FIELD_MAX)] = "",
) -> Response:
    """Set the password, spend the link, sign in."""
    if not _form_token_valid(request, csrf_token):
        raise CsrfRefused
    now = now_of(request)
    try:
        user = await accounts.link_user(db, token, now)
    except NotFoundError:
        return admin_page(request, "admin_login.html", 404, mode="link_invalid", csrf_token="")
    if password != repeat:
        return _public_form(
            request, "password", 422, email=user.email, error="mismatch", token=token
        )
    try:
        user = await accounts.set_password_by_link(
            db, token, password, now, client_address(request)
        )
    except InvalidInputError:
        return _public_form(
            request, "password", 422, email=user.email, error="too_short", token=token
        )
    return await _signed_in(request, db, user, "/admin")


@router.get("/password-reset", response_class=HTMLResponse)
async def reset_page(request: Request) -> HTMLResponse:
    """Ask for a new password by email."""
    return _public_form(request, "reset", email="", error="")


@router.post("/password-reset", response_class=HTMLResponse)
async def reset(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form(max_length=FIELD_MAX)] = "",
    csrf_token: Annotated[str, Form(max_length=FIELD_MAX)] = "",
) -> Response:
    """Mail a reset link if the account exists; the answer is the same either way."""
    if not _form_token_valid(request, csrf_token):
        raise CsrfRefused
    now, settings = now_of(request), app_settings(request)
    user = await accounts.find_user(db, email)
    if user is not None and user.disabled_at is None:
        recent = await db.scalar(
            select(func.count())
            .select_from(StaffLink)
            .where(
                StaffLink.user_id == user.id,
                StaffLink.purpose == LinkPurpose.RESET_PASSWORD,
                StaffLink.created_at > now - timedelta(hours=1),
            )
        )
        if (recent or 0) < RESETS_PER_HOUR:
            await send_link(
                db, user, LinkPurpose.RESET_PASSWORD, now,
                base_url=settings.base_url, sender=settings.mail_from,
            )  # fmt: skip
        await accounts.audit(
            db, "password_reset_requested", now, user_id=user.id, client=client_address(request)
        )
    return admin_page(request, "admin_login.html", mode="reset_sent", csrf_token="")
