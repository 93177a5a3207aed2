"""Request dependencies: the unit of work, staff authentication, settings."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import Clock
from orchestrator.conferences import repository as conferences
from orchestrator.conferences.models import Conference
from orchestrator.config import Settings
from orchestrator.db import transaction
from orchestrator.errors import OrchestratorError
from orchestrator.followups import MailContext
from orchestrator.rooms.templates import RoomTemplate


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    # The edge owns the transaction: commit when the route returns, roll back if it raises.
    async with transaction(request.app.state.sessions) as session:
        yield session


_bearer = HTTPBearer(auto_error=False, description="ORCH_API_KEY")


def _bearer_matches(
    request: Request, secret: str, credentials: HTTPAuthorizationCredentials | None
) -> bool:
    """Whether the bearer token equals the named secret (constant-time compare)."""
    expected: str = request.app.state.settings.require(secret)
    given = credentials.credentials if credentials else ""
    return hmac.compare_digest(given.encode(), expected.encode())


async def require_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Staff API access: `Authorization: Bearer ORCH_API_KEY` (constant-time compare)."""
    if not _bearer_matches(request, "api_key", credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Anmeldung erforderlich (Authorization: Bearer <ORCH_API_KEY>).",
            headers={"WWW-Authenticate": "Bearer"},
        )


DbSession = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


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
