"""Staff sessions for the pages under /admin: log in, log out, the session check and CSRF.

First step, until personal staff accounts exist: an organiser logs in with the staff API key
(ORCH_API_KEY) that the operator already holds; the session gets the role "organiser". The
session is a signed cookie, not a server-side row: `v1.<role>.<issued-at>.<session id>.<mac>`,
the MAC an HMAC-SHA256 under a key derived from ORCH_SECRET_KEY and ORCH_API_KEY, so rotating
either secret ends every session. Sessions last 12 hours; logging out deletes the cookie.

Every form and fetch call carries a CSRF token, the HMAC of the session id; the login form,
which comes before any session, is bound to a random nonce cookie the same way. Failed logins
are limited per client address (in memory, per process): behind a reverse proxy run uvicorn
with --proxy-headers so the address is the client's, not the proxy's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from orchestrator.conferences import repository as conferences
from orchestrator.config import Settings
from orchestrator.web import pages
from orchestrator.web.deps import DbSession

log = logging.getLogger(__name__)

COOKIE = "orch_staff"
LOGIN_COOKIE = "orch_staff_login"
COOKIE_PATH = "/admin"
LOGIN_URL = "/admin/login"
ORGANISER = "organiser"
ROLES = frozenset({ORGANISER})
SESSION_LIFETIME = timedelta(hours=12)
CLOCK_SKEW = timedelta(minutes=1)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FAILED_LOGIN_LIMIT = 10
FAILED_LOGIN_WINDOW = timedelta(minutes=1)

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
    """A verified staff session: who (role), since when, and its CSRF token."""

    role: str
    issued_at: datetime
    session_id: str
    csrf_token: str


class StaffLoginRequired(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, detail="Anmeldung erforderlich.")


class CsrfRefused(HTTPException):
    def __init__(self) -> None:
        super().__init__(403, detail="Formular abgelaufen oder nicht von dieser Seite.")


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _signing_key(settings: Settings) -> bytes:
    # Both secrets: rotating ORCH_SECRET_KEY or ORCH_API_KEY ends every staff session.
    secret = settings.require("secret_key").encode()
    api_key = settings.require("api_key").encode()
    return hmac.new(secret, b"staff-session\x00" + api_key, hashlib.sha256).digest()


def _mac(settings: Settings, *parts: str) -> str:
    message = "\x00".join(parts).encode()
    return _b64(hmac.new(_signing_key(settings), message, hashlib.sha256).digest())


def _session(settings: Settings, role: str, issued: int, session_id: str) -> StaffSession:
    csrf = _mac(settings, "csrf", session_id)
    return StaffSession(role, datetime.fromtimestamp(issued, tz=UTC), session_id, csrf)


def issue(settings: Settings, now: datetime, role: str = ORGANISER) -> tuple[str, StaffSession]:
    """A new session (fresh random id) and its signed cookie value."""
    session_id = secrets.token_urlsafe(18)
    issued = int(now.timestamp())
    mac = _mac(settings, "v1", role, str(issued), session_id)
    return f"v1.{role}.{issued}.{session_id}.{mac}", _session(settings, role, issued, session_id)


def verify(settings: Settings, value: str, now: datetime) -> StaffSession | None:
    """The session a cookie value carries, or None when forged, malformed or expired."""
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != "v1" or parts[1] not in ROLES or not parts[2].isdecimal():
        return None
    _version, role, issued, session_id, mac = parts
    if not hmac.compare_digest(mac, _mac(settings, "v1", role, issued, session_id)):
        return None
    age = now - datetime.fromtimestamp(int(issued), tz=UTC)
    if age < -CLOCK_SKEW or age >= SESSION_LIFETIME:
        return None
    return _session(settings, role, int(issued), session_id)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


def current(request: Request) -> StaffSession | None:
    """The request's valid staff session, if any."""
    value = request.cookies.get(COOKIE)
    return verify(_settings(request), value, _now(request)) if value else None


async def require_staff_session(request: Request) -> StaffSession:
    """Staff pages: a valid session cookie (pages redirect to the login, fetch gets 401)."""
    staff = current(request)
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


class LoginThrottle:
    """Failed logins per client address within a sliding window (memory, this process)."""

    def __init__(
        self, limit: int = FAILED_LOGIN_LIMIT, window: timedelta = FAILED_LOGIN_WINDOW
    ) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, client: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(client, deque())
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures

    def retry_after(self, client: str, now: datetime) -> timedelta | None:
        """How long this client must wait, or None when it may try."""
        failures = self._recent(client, now)
        if len(failures) < self.limit:
            return None
        return failures[0] + self.window - now

    def failed(self, client: str, now: datetime) -> None:
        if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k, now)}
        self._failures[client] = self._recent(client, now)
        self._failures[client].append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def throttle(request: Request) -> LoginThrottle:
    """The app's login throttle (`app.state.staff_login_throttle`)."""
    state = request.app.state
    if not hasattr(state, "staff_login_throttle"):
        state.staff_login_throttle = LoginThrottle()
    found: LoginThrottle = state.staff_login_throttle
    return found


def wants_json(request: Request) -> bool:
    """A fetch call (asks for JSON) rather than a page load."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def safe_next(value: str | None) -> str:
    """Only our own /admin pages as the target after login (no open redirect)."""
    if (
        value
        and value.startswith("/admin/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return LOGIN_URL


def admin_page(
    request: Request, name: str, status_code: int = 200, /, **context: object
) -> HTMLResponse:
    """A staff page in the browser's language: never cached, scripts only from us."""
    html = pages.render(name, pages.pick_language(request), **context)
    return HTMLResponse(html, status_code=status_code, headers=ADMIN_HEADERS)


def _login_required(request: Request) -> Response:
    if wants_json(request):
        body = {"detail": "Anmeldung erforderlich.", "code": "login_required", "login": LOGIN_URL}
        return JSONResponse(body, status_code=401, headers=pages.PRIVATE_HEADERS)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{LOGIN_URL}?next={quote(target, safe='')}"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


def _csrf_refused(request: Request) -> Response:
    if wants_json(request):
        body = {"detail": "CSRF-Token fehlt oder ist falsch.", "code": "csrf"}
        return JSONResponse(body, status_code=403, headers=pages.PRIVATE_HEADERS)
    return admin_page(request, "admin_login.html", 403, mode="refused", csrf_token="", next="")


class StaffRoute(APIRoute):
    """Routes of staff pages: a missing session or CSRF token gets a page, not bare JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except StaffLoginRequired:
                return _login_required(request)
            except CsrfRefused:
                return _csrf_refused(request)

        return guarded


router = APIRouter(prefix="/admin", route_class=StaffRoute, include_in_schema=False)


def _secure(request: Request) -> bool:
    return _settings(request).base_url.startswith("https://")


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def _login_nonce(request: Request) -> tuple[str, bool]:
    """The login form's nonce from its cookie, or a new one (True: set the cookie)."""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if 20 <= len(nonce) <= 64 and nonce.isascii() and nonce.isprintable():
        return nonce, False
    return secrets.token_urlsafe(24), True


def _login_form(
    request: Request, next_url: str, status_code: int = 200, error: str = ""
) -> HTMLResponse:
    nonce, fresh = _login_nonce(request)
    token = _mac(_settings(request), "login-csrf", nonce)
    context = {"mode": "form", "csrf_token": token, "next": next_url, "error": error}
    response = admin_page(request, "admin_login.html", status_code, **context)
    if fresh:
        _set_cookie(request, response, LOGIN_COOKIE, nonce, int(SESSION_LIFETIME.total_seconds()))
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, session: DbSession, next_url: Annotated[str, Query(alias="next")] = ""
) -> Response:
    """The login form; once logged in, the conferences with links to their staff pages."""
    staff = current(request)
    if staff is None:
        return _login_form(request, safe_next(next_url))
    listed = await conferences.list_all(session)
    context = {"mode": "signed_in", "csrf_token": staff.csrf_token, "conferences": listed}
    return admin_page(request, "admin_login.html", **context)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_token_valid(request: Request, given: str) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    expected = _mac(_settings(request), "login-csrf", nonce)
    return bool(nonce) and hmac.compare_digest(given.encode(), expected.encode())


def _throttled(request: Request, wait: timedelta) -> HTMLResponse:
    log.warning("staff.login_throttled", extra={"client": _client(request)})
    response = admin_page(request, "admin_login.html", 429, mode="throttled", csrf_token="")
    response.headers["Retry-After"] = str(max(1, int(wait.total_seconds()) + 1))
    return response


def _logged_in(request: Request, next_url: str) -> Response:
    value, staff = issue(_settings(request), _now(request))
    response = RedirectResponse(next_url, status_code=303, headers=pages.PRIVATE_HEADERS)
    _set_cookie(request, response, COOKIE, value, int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH, secure=_secure(request))
    log.info("staff.logged_in", extra={"client": _client(request), "role": staff.role})
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    api_key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next_url: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """Check the staff key; on success set the session cookie and go on to `next`."""
    client, now, target = _client(request), _now(request), safe_next(next_url)
    wait = throttle(request).retry_after(client, now)
    if wait is not None:
        return _throttled(request, wait)
    if not _login_token_valid(request, csrf_token):
        raise CsrfRefused
    expected = _settings(request).require("api_key")
    if not hmac.compare_digest(api_key.strip().encode(), expected.encode()):
        throttle(request).failed(client, now)
        log.warning("staff.login_failed", extra={"client": client})
        return _login_form(request, target, 401, error="wrong_key")
    throttle(request).succeeded(client)
    return _logged_in(request, target)


@router.post("/logout")
async def logout(request: Request, staff: CsrfChecked) -> Response:
    """End the session in this browser (the cookie is deleted)."""
    response = RedirectResponse(LOGIN_URL, status_code=303, headers=pages.PRIVATE_HEADERS)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True)
    log.info("staff.logged_out", extra={"role": staff.role})
    return response
