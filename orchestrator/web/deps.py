"""Request dependencies: the unit of work, staff authentication, settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import OPERATOR, Principal
from orchestrator.clock import Clock
from orchestrator.conferences import repository as conferences
from orchestrator.conferences.models import Conference
from orchestrator.config import Settings
from orchestrator.db import transaction
from orchestrator.errors import OrchestratorError
from orchestrator.followups import MailContext
from orchestrator.rooms.service import find_by_ref as find_room
from orchestrator.rooms.templates import RoomTemplate

SESSION_COOKIE = "orch_staff"  # web/staff/auth.py sets it


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    # The edge owns the transaction: commit when the route returns, roll back if it raises.
    async with transaction(request.app.state.sessions) as session:
        yield session


_bearer = HTTPBearer(auto_error=False, description="ORCH_API_KEY or a personal API token")


def staff_mac(settings: Settings, *parts: str) -> str:
    """An HMAC-SHA256 under a key derived from ORCH_SECRET_KEY (the staff CSRF tokens)."""
    secret = settings.require("secret_key").encode()
    key = hmac.new(secret, b"staff-csrf", hashlib.sha256).digest()
    digest = hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def staff_csrf(settings: Settings, session_hash: str) -> str:
    """The CSRF token of a staff session."""
    return staff_mac(settings, "csrf", session_hash)


def _bearer_matches(
    request: Request, secret: str, credentials: HTTPAuthorizationCredentials | None
) -> bool:
    """Whether the bearer token equals the named secret (constant-time compare)."""
    expected: str = request.app.state.settings.require(secret)
    given = credentials.credentials if credentials else ""
    return hmac.compare_digest(given.encode(), expected.encode())


DbSession = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]

_STAFF_UNAUTHORIZED = (
    "Anmeldung erforderlich (Authorization: Bearer <ORCH_API_KEY oder persönlicher API-Schlüssel>"
    " oder eine Sitzung des Veranstaltungsteams)."
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None, db: AsyncSession
) -> Principal | None:
    """Who calls: the operator key, a personal API token, or a staff session cookie."""
    if credentials is not None:
        if _bearer_matches(request, "api_key", credentials):
            return OPERATOR
        user = await accounts.api_token_user(db, credentials.credentials, request.app.state.clock())
        return accounts.principal(user) if user is not None else None
    token = request.cookies.get(SESSION_COOKIE, "")
    if not 20 <= len(token) <= 100:
        return None
    user = await accounts.login_user(db, token, request.app.state.clock())
    if user is None:
        return None
    if request.method not in _SAFE_METHODS:  # a cookie is sent by the browser by itself
        settings: Settings = request.app.state.settings
        expected = staff_csrf(settings, accounts.secret_hash(token))
        given = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="CSRF-Token fehlt oder ist falsch."
            )
    return accounts.principal(user)


async def _allowed(request: Request, principal: Principal, db: AsyncSession) -> bool:
    """Organisers act on their conferences; what spans all of them is for organisers of all."""
    params = request.path_params
    if "slug" in params:
        found = await conferences.find_by_slug(db, str(params["slug"]))
        return principal.organises_everything or (
            found is not None and principal.organises(found.id)
        )
    if "room_id" in params:
        room = await find_room(db, str(params["room_id"]))
        return principal.organises_everything or (
            room is not None and principal.organises(room.conference_id)
        )
    if request.url.path.rstrip("/") == "/api/v1/conferences" and request.method == "GET":
        return True  # the list shows each caller their own conferences
    return principal.organises_everything


async def require_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    db: DbSession,
) -> Principal:
    """Staff API access: ORCH_API_KEY, a personal API token or a session, then the role."""
    principal = await _principal(request, credentials, db)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=_STAFF_UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not await _allowed(request, principal, db):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Keine Berechtigung.")
    return principal


Caller = Annotated[Principal, Depends(require_staff)]


async def _conference(slug: str, session: DbSession) -> Conference:
    return await conferences.get_by_slug(session, slug)


ConferenceBySlug = Annotated[Conference, Depends(_conference)]


class JitsiUnauthorizedError(OrchestratorError):
    status_code = 401
    code = "unauthorized"


_jitsi_bearer = HTTPBearer(auto_error=False, description="ORCH_JITSI_WEBHOOK_SECRET")


async def require_jitsi(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_jitsi_bearer)],
) -> None:
    """Jitsi callbacks (event_sync, reservations): `Authorization: Bearer` the webhook secret."""
    if not _bearer_matches(request, "jitsi_webhook_secret", credentials):
        # {message}: prosody's reservation module shows that field when it refuses a room.
        raise JitsiUnauthorizedError("Nicht autorisiert / unauthorized")


async def get_templates(request: Request) -> dict[str, RoomTemplate]:
    templates: dict[str, RoomTemplate] = request.app.state.room_templates
    return templates


RoomTemplates = Annotated[dict[str, RoomTemplate], Depends(get_templates)]


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


AppClock = Annotated[Clock, Depends(get_clock)]


async def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The session factory, for work that commits in several transactions of its own."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]


async def get_mail_context(request: Request) -> MailContext:
    settings: Settings = request.app.state.settings
    return MailContext(base_url=settings.base_url, sender=settings.mail_from)


Mail = Annotated[MailContext, Depends(get_mail_context)]
