"""Queries on conferences, sessions and forums."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from orchestrator.conferences.models import Conference, ConferenceSession, Forum
from orchestrator.errors import NotFoundError
from orchestrator.participants.models import Assignment, AssignmentStatus
from orchestrator.rooms.models import Room

# Everything `to_out` and the room rules read, loaded up front (no lazy loads under asyncio).
CONFERENCE_GRAPH = (
    selectinload(Conference.sessions).selectinload(ConferenceSession.rooms),
    selectinload(Conference.forums).selectinload(Forum.room),
    selectinload(Conference.rooms).selectinload(Room.session),
)


async def find_by_slug(session: AsyncSession, slug: str) -> Conference | None:
    statement = select(Conference).where(Conference.slug == slug).options(*CONFERENCE_GRAPH)
    return (await session.execute(statement)).scalar_one_or_none()


async def get_by_slug(session: AsyncSession, slug: str) -> Conference:
    conference = await find_by_slug(session, slug)
    if conference is None:
        raise NotFoundError(f"Konferenz {slug!r} nicht gefunden.")
    return conference


async def list_all(session: AsyncSession) -> Sequence[Conference]:
    statement = (
        select(Conference)
        .order_by(Conference.created_at.desc(), Conference.id.desc())
        .options(*CONFERENCE_GRAPH)
    )
    return (await session.execute(statement)).scalars().all()


async def forum_fill(session: AsyncSession, conference_id: int) -> dict[int, int]:
    """Assigned (not waitlisted) people per forum id."""
    statement = (
        select(Assignment.forum_id, func.count())
        .join(Forum, Forum.id == Assignment.forum_id)
        .where(Forum.conference_id == conference_id, Assignment.status == AssignmentStatus.ASSIGNED)
        .group_by(Assignment.forum_id)
    )
    return {
        forum_id: count
        for forum_id, count in (await session.execute(statement)).all()
        if forum_id is not None
    }


def forum_by_key(conference: Conference, key: str) -> Forum:
    for forum in conference.forums:
        if forum.key == key:
            return forum
    raise NotFoundError(f"Forum {key!r} gibt es in {conference.slug!r} nicht.")


def session_by_key(conference: Conference, key: str) -> ConferenceSession:
    for item in conference.sessions:
        if item.key == key:
            return item
    raise NotFoundError(f"Sitzung {key!r} gibt es in {conference.slug!r} nicht.")
