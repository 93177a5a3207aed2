"""Who is signed in to /admin, and what they may do there: sessions, CSRF, role checks.

A staff member signs in with email and password (accounts/service.py). The cookie carries a
random session token; the database keeps its SHA-256, so signing out or changing the
password ends the session at once, in every process. The cookie is HttpOnly, SameSite=Strict
and Secure when the service is reached over HTTPS (ORCH_BASE_URL).

Every form and fetch call carries a CSRF token, the HMAC of the session token under a key
from ORCH_SECRET_KEY; the sign-in form, which comes before any session, is bound to a random
nonce cookie the same way.

Permissions are dependencies declared on the route (never an `if` inside it): a page that
belongs to a conference asks `require_checkin` or `require_organiser`; a user without that
role gets a 403 page, an anonymous visitor the sign-in.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Principal
from orchestrator.config import Settings
from orchestrator.web import pages
from orchestrator.web.deps import SESSION_COOKIE, ConferenceBySlug, DbSession, staff_csrf

log = logging.getLogger(__name__)

COOKIE = SESSION_COOKIE
LOGIN_COOKIE = "orch_staff_login"
COOKIE_PATH = "/"  # the staff API accepts the session too
LOGIN_URL = "/admin/login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TOKEN_MAX = 100  # a session token is 43 characters; longer cookies are not ours

ADMIN_HEADERS = {
    **pages.PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "connect-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class StaffSession:
    """A signed-in staff member: who, with which roles, and the session's CSRF token."""

    principal: Principal
    token: str
    csrf_token: str

    @property
    def language(self) -> str | None:
        return self.principal.language


class StaffLoginRequired(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, detail="Anmeldung erforderlich.")


class CsrfRefused(HTTPException):
    def __init__(self) -> None:
        super().__init__(403, detail="Formular abgelaufen oder nicht von dieser Seite.")


class StaffForbidden(HTTPException):
    def __init__(self) -> None:
        super().__init__(403, detail="Keine Berechtigung für diese Seite.")


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def now_of(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


def client_address(request: Request) -> str:
    """The peer address (uvicorn rewrites it from X-Forwarded-For only for trusted proxies)."""
    return request.client.host if request.client else "unknown"


def session_token(request: Request) -> str | None:
    value = request.cookies.get(COOKIE, "")
    return value if 20 <= len(value) <= TOKEN_MAX and value.isascii() else None


async def current(request: Request, db: DbSession) -> StaffSession | None:
    """The request's valid staff session, if any."""
    token = session_token(request)
    if token is None:
        return None
    user = await accounts.login_user(db, token, now_of(request))
    if user is None:
        return None
    csrf = staff_csrf(app_settings(request), accounts.secret_hash(token))
    return StaffSession(accounts.principal(user), token, csrf)


async def require_staff_session(
    request: Request, staff: Annotated[StaffSession | None, Depends(current)]
) -> StaffSession:
    """Staff pages: a valid session (pages redirect to the sign-in, fetch gets 401)."""
    if staff is None:
        raise StaffLoginRequired
    return staff


StaffContext = Annotated[StaffSession, Depends(require_staff_session)]


async def _submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def require_csrf(request: Request, staff: StaffContext) -> StaffSession:
    """State-changing staff requests: the session's CSRF token in the form or X-CSRF-Token."""
    given = await _submitted_token(request)
    if not hmac.compare_digest(given.encode(), staff.csrf_token.encode()):
        log.warning("staff.csrf_refused", extra={"path": request.url.path})
        raise CsrfRefused
    return staff


CsrfChecked = Annotated[StaffSession, Depends(require_csrf)]


async def require_checkin(staff: StaffContext, conference: ConferenceBySlug) -> StaffSession:
    """The check-in of a conference: its check-in staff and its organisers."""
    if not staff.principal.checks_in(conference.id):
        raise StaffForbidden
    return staff


async def require_organiser(staff: StaffContext, conference: ConferenceBySlug) -> StaffSession:
    """A conference's workspace: its organisers."""
    if not staff.principal.organises(conference.id):
        raise StaffForbidden
    return staff


async def require_operator_organiser(staff: StaffContext) -> StaffSession:
    """Pages about every conference at once (the test mailbox): organisers of all."""
    if not staff.principal.organises_everything:
        raise StaffForbidden
    return staff


def wants_json(request: Request) -> bool:
    """A fetch call (asks for JSON) rather than a page load."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def safe_next(value: str | None) -> str:
    """Only our own /admin pages as the target after sign-in (no open redirect)."""
    if (
        value
        and value.startswith("/admin/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return "/admin"


def staff_language(request: Request, staff: StaffSession | None) -> str:
    """?lang= when asked for, else the user's own choice, else the browser's language."""
    asked = request.query_params.get("lang", "").lower()
    if asked in pages.LANGUAGES or staff is None:
        return pages.pick_language(request)
    return pages.pick_language(request, staff.language)


def admin_page(
    request: Request,
    name: str,
    status_code: int = 200,
    /,
    staff: StaffSession | None = None,
    **context: Any,
) -> HTMLResponse:
    """A staff page in the user's language (else the browser's): never cached, own scripts."""
    html = pages.render(name, staff_language(request, staff), staff=staff, **context)
    return HTMLResponse(html, status_code=status_code, headers=ADMIN_HEADERS)


def _login_required(request: Request) -> Response:
    if wants_json(request):
        body = {"detail": "Anmeldung erforderlich.", "code": "login_required", "login": LOGIN_URL}
        return JSONResponse(body, status_code=401, headers=pages.PRIVATE_HEADERS)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{LOGIN_URL}?next={quote(target, safe='')}"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


def _refused(request: Request, mode: str, code: str, detail: str) -> Response:
    if wants_json(request):
        return JSONResponse(
            {"detail": detail, "code": code}, status_code=403, headers=pages.PRIVATE_HEADERS
        )
    return admin_page(request, "admin_login.html", 403, mode=mode, csrf_token="", next="")


class StaffRoute(APIRoute):
    """Routes of staff pages: no session, no CSRF token or no right gets a page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except StaffLoginRequired:
                return _login_required(request)
            except CsrfRefused:
                return _refused(request, "refused", "csrf", "CSRF-Token fehlt oder ist falsch.")
            except StaffForbidden:
                return _refused(request, "forbidden", "forbidden", "Keine Berechtigung.")

        return guarded


def secure(request: Request) -> bool:
    return app_settings(request).base_url.startswith("https://")


def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=COOKIE_PATH,
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=secure(request), httponly=True, samesite="strict"
    )
