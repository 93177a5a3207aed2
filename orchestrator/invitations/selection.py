"""Whom an invitation run can be limited to: the people of a forum not yet invited."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.participants.models import Assignment, AssignmentStatus, Person


def _not_invited(conference_id: int) -> tuple[ColumnElement[bool], ...]:
    return (Person.conference_id == conference_id, Person.invited_at.is_(None))


async def not_invited_count(session: AsyncSession, conference_id: int) -> int:
    """How many of the conference's people have had no invitation yet."""
    query = select(func.count()).select_from(Person).where(*_not_invited(conference_id))
    return int((await session.execute(query)).scalar_one())


async def not_invited_by_forum(session: AsyncSession, conference_id: int) -> dict[int, int]:
    """Forum id -> how many people with a seat in it have had no invitation yet."""
    query = (
        select(Assignment.forum_id, func.count(func.distinct(Person.id)))
        .join(Person, Person.id == Assignment.person_id)
        .where(
            *_not_invited(conference_id),
            Assignment.status == AssignmentStatus.ASSIGNED,
            Assignment.forum_id.is_not(None),
        )
        .group_by(Assignment.forum_id)
    )
    return {
        int(forum): int(count) for forum, count in await session.execute(query) if forum is not None
    }


async def not_invited_in_forum(
    session: AsyncSession, conference_id: int, forum_id: int
) -> list[uuid.UUID]:
    """The people with a seat in this forum who have had no invitation yet."""
    query = (
        select(Person.id)
        .join(Assignment, Assignment.person_id == Person.id)
        .where(
            *_not_invited(conference_id),
            Assignment.status == AssignmentStatus.ASSIGNED,
            Assignment.forum_id == forum_id,
        )
        .distinct()
    )
    return list(await session.scalars(query))
