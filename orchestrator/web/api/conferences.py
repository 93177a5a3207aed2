"""Conferences, their sessions and forums."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Response, UploadFile, status

from orchestrator.conferences import cancelling, repository, service
from orchestrator.conferences.schemas import (
    ConferenceOut,
    ConferencePatch,
    ConferenceSpec,
    ForumOut,
    SessionOut,
)
from orchestrator.followups import after_change
from orchestrator.web.deps import (
    AppClock,
    Caller,
    ConferenceBySlug,
    DbSession,
    Mail,
    RoomTemplates,
)
from orchestrator.web.uploads import read_limited

router = APIRouter(prefix="/conferences", tags=["conferences"])


@router.get("")
async def list_conferences(session: DbSession, caller: Caller) -> list[ConferenceOut]:
    """The conferences the caller organises (every one for the operator key)."""
    listed = await repository.list_all(session)
    return [service.to_out(c) for c in listed if caller.organises(c.id)]


async def _save(
    session: DbSession,
    spec: ConferenceSpec,
    response: Response,
    templates: RoomTemplates,
    mail: Mail,
    clock: AppClock,
) -> ConferenceOut:
    outcome = await service.import_spec(session, spec, templates)
    await after_change(session, outcome.conference, mail, clock())
    response.status_code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
    conference = await repository.get_by_slug(session, outcome.conference.slug)
    return service.to_out(conference, await repository.forum_fill(session, conference.id))


@router.post("", status_code=status.HTTP_201_CREATED, responses={200: {"model": ConferenceOut}})
async def create_conference(
    spec: ConferenceSpec,
    session: DbSession,
    response: Response,
    templates: RoomTemplates,
    mail: Mail,
    clock: AppClock,
) -> ConferenceOut:
    """Create an edition from the same shape as the TOML file, or update it by slug."""
    return await _save(session, spec, response, templates, mail, clock)


@router.post(
    "/import", status_code=status.HTTP_201_CREATED, responses={200: {"model": ConferenceOut}}
)
async def import_conference(
    file: Annotated[UploadFile, File(description="conference TOML")],
    session: DbSession,
    response: Response,
    templates: RoomTemplates,
    mail: Mail,
    clock: AppClock,
) -> ConferenceOut:
    """Upload a conference TOML file (idempotent: a second upload updates)."""
    spec = service.parse_spec_bytes(await read_limited(file), file.filename)
    return await _save(session, spec, response, templates, mail, clock)


@router.get("/{slug}")
async def get_conference(conference: ConferenceBySlug, session: DbSession) -> ConferenceOut:
    return service.to_out(conference, await repository.forum_fill(session, conference.id))


@router.patch("/{slug}")
async def update_conference(
    slug: str, patch: ConferencePatch, session: DbSession, mail: Mail, clock: AppClock
) -> ConferenceOut:
    conference = await service.update(session, slug, patch)
    await after_change(session, conference, mail, clock())
    return service.to_out(conference, await repository.forum_fill(session, conference.id))


@router.delete("/{slug}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conference(slug: str, session: DbSession) -> None:
    await service.delete(session, slug)


@router.get("/{slug}/sessions")
async def list_sessions(conference: ConferenceBySlug) -> list[SessionOut]:
    return service.to_out(conference).sessions


@router.get("/{slug}/forums")
async def list_forums(conference: ConferenceBySlug, session: DbSession) -> list[ForumOut]:
    """Each forum with its `key`, Jitsi `room` name and how many are assigned."""
    return service.to_out(conference, await repository.forum_fill(session, conference.id)).forums


@router.post("/{slug}/sessions/{key}/cancel")
async def cancel_session(
    slug: str, key: str, session: DbSession, mail: Mail, clock: AppClock
) -> SessionOut:
    """Cancel a session: CANCEL to everyone who has it in a calendar, its reminders dropped,
    its join links refused. Idempotent: cancelling it again sends nothing."""
    conference, item = await cancelling.cancel_session(session, slug, key)
    await after_change(session, conference, mail, clock())
    return service.session_out(item, ZoneInfo(conference.timezone))
