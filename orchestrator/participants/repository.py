"""Queries on people: paging, search, lookups by id and by personal token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from orchestrator.conferences.models import Forum
from orchestrator.errors import NotFoundError
from orchestrator.participants.models import Assignment, AssignmentStatus, ForumChoice, Person
from orchestrator.participants.search_keys import query_forms

_WITH_RELATIONS = (
    selectinload(Person.choices).selectinload(ForumChoice.forum),
    selectinload(Person.assignments).selectinload(Assignment.forum),
)


def _filtered(conference_id: int, query: str | None, forum_key: str | None) -> Select[Person]:
    statement = select(Person).where(Person.conference_id == conference_id)
    if query and query.strip():
        # Case- and accent-insensitive on both backends: see search_keys.py. `autoescape`
        # makes "%" and "_" typed by the user match themselves.
        forms = query_forms(query)
        statement = statement.where(
            or_(false(), *(Person.search_key.contains(form, autoescape=True) for form in forms))
        )
    if forum_key:
        statement = statement.where(
            Person.assignments.any(
                (Assignment.status == AssignmentStatus.ASSIGNED)
                & Assignment.forum.has(Forum.key == forum_key)
            )
        )
    return statement


async def page(
    session: AsyncSession,
    conference_id: int,
    *,
    query: str | None = None,
    forum_key: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Person], int]:
    """One page of people (by last name, first name, email) and the total that match."""
    statement = _filtered(conference_id, query, forum_key)
    total = (
        await session.execute(select(func.count()).select_from(statement.subquery()))
    ).scalar_one()
    ordered = (
        statement.order_by(Person.last_name, Person.first_name, Person.email)
        .offset(offset)
        .limit(limit)
        .options(*_WITH_RELATIONS)
    )
    return (await session.execute(ordered)).scalars().all(), total


async def get(session: AsyncSession, conference_id: int, person_id: uuid.UUID) -> Person:
    statement = (
        select(Person)
        .where(Person.conference_id == conference_id, Person.id == person_id)
        .options(*_WITH_RELATIONS)
    )
    person = (await session.execute(statement)).scalar_one_or_none()
    if person is None:
        raise NotFoundError("Person nicht gefunden.")
    return person


async def find_by_email(session: AsyncSession, conference_id: int, email: str) -> Person | None:
    statement = select(Person).where(
        Person.conference_id == conference_id, Person.email == email.strip().lower()
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def count(session: AsyncSession, conference_id: int) -> int:
    statement = (
        select(func.count()).select_from(Person).where(Person.conference_id == conference_id)
    )
    return (await session.execute(statement)).scalar_one()
