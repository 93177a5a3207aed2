"""Shared helpers for the assignment tests: a sample conference, people with choices, rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, Forum
from orchestrator.conferences.repository import forum_fill, get_by_slug
from orchestrator.conferences.service import import_file
from orchestrator.demo.people import generate
from orchestrator.participants.models import Assignment, ForumChoice, Person, Role
from tests.conftest import SAMPLE_TOML


async def sample(session: AsyncSession, path: Path = SAMPLE_TOML) -> Conference:
    outcome = await import_file(session, path)
    await session.commit()
    return await get_by_slug(session, outcome.conference.slug)


def forum_ids(conference: Conference) -> dict[str, int]:
    return {forum.key: forum.id for forum in conference.forums}


def choice_keys(row: Mapping[str, str]) -> list[str]:
    return [row[name] for name in ("forum_choice_1", "forum_choice_2") if row.get(name)]


async def add_people(
    session: AsyncSession, conference: Conference, rows: list[dict[str, str]]
) -> list[Person]:
    ids = forum_ids(conference)
    people = [
        Person(
            conference_id=conference.id,
            email=row["email"],
            role=Role(row["role"]),
            choices=[
                ForumChoice(forum_id=ids[key], rank=rank)
                for rank, key in enumerate(choice_keys(row), start=1)
            ],
        )
        for row in rows
    ]
    session.add_all(people)
    await session.commit()
    return people


async def add_demo(session: AsyncSession, conference: Conference, count: int) -> list[Person]:
    return await add_people(session, conference, generate(count, list(forum_ids(conference))))


def guest(email: str, *choices: str, role: str = "participant") -> dict[str, str]:
    names = ("forum_choice_1", "forum_choice_2")
    return {"email": email, "role": role, **dict(zip(names, choices, strict=False))}


async def snapshot(session: AsyncSession) -> list[tuple[Any, ...]]:
    statement = select(
        Assignment.id,
        Assignment.person_id,
        Assignment.session_id,
        Assignment.forum_id,
        Assignment.status,
        Assignment.source,
        Assignment.choice_rank,
        Assignment.updated_at,
    ).order_by(Assignment.id)
    return [tuple(row) for row in await session.execute(statement)]


async def row_of(session: AsyncSession, person_id: uuid.UUID) -> Assignment | None:
    statement = (
        select(Assignment)
        .where(Assignment.person_id == person_id)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one_or_none()


async def fill_by_key(session: AsyncSession, conference: Conference) -> dict[str, int]:
    fill = await forum_fill(session, conference.id)
    return {forum.key: fill.get(forum.id, 0) for forum in conference.forums}


async def assert_capacities_kept(session: AsyncSession, conference: Conference) -> None:
    fill = await fill_by_key(session, conference)
    assert all(fill[forum.key] <= forum.capacity for forum in conference.forums), fill


async def set_capacity(session: AsyncSession, conference: Conference, key: str, seats: int) -> None:
    await session.execute(
        update(Forum).where(Forum.id == forum_ids(conference)[key]).values(capacity=seats)
    )
    await session.commit()
    for forum in conference.forums:
        await session.refresh(forum)
