"""Time the forum balancer on the demo conference: the pure algorithm and `run_assignment`.

    .venv/bin/python bench/assign.py [--people 5000] [--scale 27]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Without --database-url it builds a fresh SQLite file in a temporary directory. With a
PostgreSQL URL it connects to that database only to create (and afterwards drop) a scratch
database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import SAMPLE, add_database_url, scratch_database
from orchestrator.conferences.models import Conference, Forum
from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.service import import_file
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.demo.people import generate
from orchestrator.participants.assignment import (
    STAFF_ROLES,
    AssignmentReport,
    Candidate,
    Placement,
    Seats,
    balance,
    run_assignment,
)
from orchestrator.participants.models import ForumChoice, Person, Role, new_personal_token
from orchestrator.schema import upgrade

T = TypeVar("T")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the forum balancer.")
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="capacity multiplier (default: just enough seats for everyone)",
    )
    add_database_url(parser)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the pure balancer")
    return parser.parse_args()


async def load_conference(session: AsyncSession, people: int, scale: float | None) -> Conference:
    """The demo conference with its forum capacities scaled to the number of people."""
    conference = (await import_file(session, SAMPLE)).conference
    seats = sum(forum.capacity for forum in conference.forums)
    factor = scale if scale is not None else math.ceil(people / seats)
    for forum in conference.forums:
        forum.capacity = round(forum.capacity * factor)
    return conference


def person_row(conference_id: int, row: dict[str, str]) -> dict[str, Any]:
    names = (
        "email",
        "first_name",
        "last_name",
        "organisation",
        "role",
        "attendance_mode",
        "language",
    )
    return {
        "id": uuid.uuid4(),
        "token": new_personal_token(),
        "conference_id": conference_id,
        **{name: row[name] for name in names},
    }


async def add_people(session: AsyncSession, conference: Conference, count: int) -> None:
    """`count` demo people with their two choices, inserted in bulk."""
    forum_ids = {forum.key: forum.id for forum in conference.forums}
    rows = generate(count, list(forum_ids), seed=1)
    people = [person_row(conference.id, row) for row in rows]
    choices = [
        {"person_id": person["id"], "forum_id": forum_ids[row[column]], "rank": rank}
        for person, row in zip(people, rows, strict=True)
        for rank, column in enumerate(("forum_choice_1", "forum_choice_2"), start=1)
    ]
    await session.execute(insert(Person), people)
    await session.execute(insert(ForumChoice), choices)


async def candidates(session: AsyncSession, conference: Conference) -> list[Candidate]:
    """The balancer's input, read once outside the timing."""
    people = await session.execute(
        select(Person.id, Person.email, Person.role).where(Person.conference_id == conference.id)
    )
    choices: dict[uuid.UUID, list[int]] = {}
    statement = select(ForumChoice.person_id, ForumChoice.forum_id).order_by(ForumChoice.rank)
    for person_id, forum_id in await session.execute(statement):
        choices.setdefault(person_id, []).append(forum_id)
    return [
        Candidate(id_, email, tuple(choices.get(id_, ())), Role(role) in STAFF_ROLES)
        for id_, email, role in people
    ]


def time_pure(
    forums: list[Forum], people: list[Candidate], slug: str, repeat: int
) -> tuple[float, dict[uuid.UUID, Placement]]:
    seats = [Seats(forum.id, forum.capacity) for forum in forums]
    durations, result = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        result = balance(seats, people, salt=slug)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), result


async def timed(step: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    value = await step()
    return time.perf_counter() - started, value


async def time_run(
    factory: async_sessionmaker[AsyncSession], slug: str
) -> tuple[float, AssignmentReport]:
    """One `run_assignment` in its own transaction, the commit included."""

    async def step() -> AssignmentReport:
        async with transaction(factory) as session:
            return await run_assignment(session, await get_by_slug(session, slug))

    return await timed(step)


def line(
    backend: str, people: int, step: str, seconds: float, counts: tuple[int, int, int, int, int]
) -> str:
    return f"{backend:<10} {people:>6} {step:<28} {seconds:>8.3f} " + " ".join(
        f"{count:>8}" for count in counts
    )


def report_counts(report: AssignmentReport) -> tuple[int, int, int, int, int]:
    return (
        report.first_choice,
        report.second_choice,
        report.other_choice,
        report.overflow,
        report.waitlisted,
    )


def pure_counts(result: dict[uuid.UUID, Placement]) -> tuple[int, int, int, int, int]:
    ranks = [placement.rank for placement in result.values()]
    outcomes = [placement.outcome.value for placement in result.values()]
    return (
        ranks.count(1),
        ranks.count(2),
        sum(1 for r in ranks if r and r > 2),
        outcomes.count("overflow"),
        outcomes.count("waitlisted"),
    )


async def shrink(factory: async_sessionmaker[AsyncSession], slug: str) -> None:
    """Take a tenth of every forum's seats, so that the next run moves people around."""
    async with transaction(factory) as session:
        for forum in (await get_by_slug(session, slug)).forums:
            forum.capacity = forum.capacity * 9 // 10


async def prepare(factory: async_sessionmaker[AsyncSession], args: argparse.Namespace) -> str:
    async with transaction(factory) as session:
        conference = await load_conference(session, args.people, args.scale)
        await add_people(session, conference, args.people)
        print("capacities:", ", ".join(f"{f.key} {f.capacity}" for f in conference.forums))
        return conference.slug


async def bench(args: argparse.Namespace, url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        factory = session_factory(engine)
        slug = await prepare(factory, args)
        async with factory() as session:
            conference = await get_by_slug(session, slug)
            people = await candidates(session, conference)
        pure_seconds, result = time_pure(conference.forums, people, slug, args.repeat)
        first_seconds, first = await time_run(factory, slug)
        again_seconds, again = await time_run(factory, slug)
        await shrink(factory, slug)
        moved_seconds, moved = await time_run(factory, slug)
    finally:
        await engine.dispose()
    backend = engine.dialect.name
    print(
        f"{'backend':<10} {'people':>6} {'step':<28} {'seconds':>8} "
        f"{'first':>8} {'second':>8} {'other':>8} {'overflow':>8} {'waitlist':>8}"
    )
    print(line(backend, len(people), "balance() (pure, median)", pure_seconds, pure_counts(result)))
    print(
        line(backend, first.total, "run_assignment (new rows)", first_seconds, report_counts(first))
    )
    print(
        line(backend, again.total, "run_assignment (re-run)", again_seconds, report_counts(again))
    )
    print(
        line(
            backend,
            moved.total,
            "run_assignment (seats -10 %)",
            moved_seconds,
            report_counts(moved),
        )
    )


async def main() -> None:
    args = parse_args()
    async with scratch_database(args.database_url) as url:
        await bench(args, url)


if __name__ == "__main__":
    asyncio.run(main())
