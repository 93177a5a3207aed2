"""Time the attendance table and its per-forum summary at 500 and 5,000 people (SPEC §6).

    .venv/bin/python bench/attendance_summary.py [--sizes 500 5000] [--repeat 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Each size gets a fresh database (a temporary SQLite file, or a scratch PostgreSQL database
created and dropped on the given server) with the demo conference, N people in forums and
20 × N presence intervals (100,000 at 5,000): people come to the opening plenary, reload
their browser a few times, go to their forum (some move to another forum), and come back
to the results plenary, where some are still connected. A tenth check in on site, one in a
hundred has an organiser's override. Timed: `attendance_table` + `summary`, the best of
--repeat runs (as timeit does), each in a fresh session after a full garbage collection;
the CSV and XLSX exports are timed once, for information. The bar (SPEC §6): from one size
to the next the time grows at most by the ratio of the sizes (linear).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import SAMPLE, add_database_url, scratch_database
from orchestrator.attendance.exports import summary, to_csv, to_xlsx
from orchestrator.attendance.models import (
    AttendanceOverride,
    AttendanceStatus,
    CheckIn,
    PresenceInterval,
)
from orchestrator.attendance.table import attendance_table
from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import get_by_slug, session_by_key
from orchestrator.conferences.service import import_file
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.demo.people import generate
from orchestrator.participants.models import Assignment, Person, new_personal_token
from orchestrator.rooms.models import Room
from orchestrator.schema import upgrade

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 3, 18, 18, 0, tzinfo=BERLIN)
STAYS_PER_PERSON = 20  # 6 in the opening, 8 in the forums, 6 in the results plenary
CHUNK = 10_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the attendance summary.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best counts")
    add_database_url(parser)
    parser.add_argument(
        "--gc-off",
        action="store_true",
        help="diagnostic: time with the cyclic garbage collector paused (default: on)",
    )
    return parser.parse_args()


def at(hour: int, minute: int) -> datetime:
    return datetime(2027, 3, 18, hour, minute, tzinfo=BERLIN)


def visits(rnd: random.Random, start: datetime, end: datetime, count: int) -> list[list[Any]]:
    """`count` stays from about `start` to about `end`, split by reloads of a few seconds."""
    begin = start + timedelta(minutes=rnd.uniform(-8, 20))
    finish = end - timedelta(minutes=rnd.uniform(-5, 45))
    cuts = sorted(begin + (finish - begin) * rnd.random() for _ in range(count - 1))
    edges = [begin, *cuts, finish]
    return [
        [edges[i] + timedelta(seconds=rnd.uniform(2, 20)) if i else edges[i], edges[i + 1]]
        for i in range(count)
    ]


def day_of(rnd: random.Random, rooms: dict[str, Room], forum: str, others: list[str]) -> list[Any]:
    """One person's 20 stays: opening, forum (a fifth move on), results (some still open)."""
    plan: list[tuple[Room, list[Any]]] = []
    plan += [(rooms["opening"], stay) for stay in visits(rnd, at(9, 30), at(10, 45), 6)]
    forum_stays = visits(rnd, at(11, 0), at(12, 30), 8)
    moved = rnd.choice(others) if rnd.random() < 0.2 else forum
    plan += [(rooms[forum if i < 5 else moved], stay) for i, stay in enumerate(forum_stays)]
    results = visits(rnd, at(13, 15), at(14, 0), 6)
    if rnd.random() < 0.1:
        results[-1][1] = None
    plan += [(rooms["results"], stay) for stay in results]
    return plan


def rooms_by_key(conference: Conference) -> dict[str, Room]:
    """Plenary rooms by session key, forum rooms by forum key."""
    keyed = {}
    for room in conference.rooms:
        if room.forum is not None:
            keyed[room.forum.key] = room
        elif room.session is not None:
            keyed[room.session.key] = room
    return keyed


async def insert_chunked(session: AsyncSession, model: type[Any], rows: list[Any]) -> None:
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(model), rows[start : start + CHUNK])


def person_row(conference_id: int, row: dict[str, str]) -> dict[str, Any]:
    names = ("email", "first_name", "last_name", "organisation", "attendance_mode", "language")
    return {
        "id": uuid.uuid4(),
        "token": new_personal_token(),
        "conference_id": conference_id,
        **{name: row[name] for name in names},
    }


def interval_rows(
    conference: Conference, people: list[dict[str, Any]], forums: list[str]
) -> list[dict[str, Any]]:
    rnd, rooms = random.Random(7), rooms_by_key(conference)
    rows = []
    for person, forum in zip(people, forums, strict=True):
        others = [key for key in set(forums) if key != forum]
        for room, (joined_at, left_at) in day_of(rnd, rooms, forum, others):
            rows.append(
                {
                    "conference_id": conference.id,
                    "room_id": room.id,
                    "room_name": room.name,
                    "person_id": person["id"],
                    "occupant_key": str(person["id"]),
                    "display_name": person["first_name"],
                    "joined_at": joined_at,
                    "left_at": left_at,
                }
            )
    return rows


async def fill(session: AsyncSession, count: int) -> tuple[str, int]:
    """The demo conference, `count` people in forums, their stays, check-ins and overrides."""
    conference = await get_by_slug(session, (await import_file(session, SAMPLE)).conference.slug)
    round_ = session_by_key(conference, "forums")
    opening = session_by_key(conference, "opening")
    generated = generate(count, [forum.key for forum in conference.forums], seed=1)
    people = [person_row(conference.id, row) for row in generated]
    forums = [row["forum_choice_1"] for row in generated]
    forum_ids = {forum.key: forum.id for forum in conference.forums}
    await session.execute(insert(Person), people)
    await session.execute(
        insert(Assignment),
        [
            {"person_id": p["id"], "session_id": round_.id, "forum_id": forum_ids[f]}
            for p, f in zip(people, forums, strict=True)
        ],
    )
    intervals = interval_rows(conference, people, forums)
    await insert_chunked(session, PresenceInterval, intervals)
    checked = [
        {"person_id": p["id"], "session_id": opening.id, "arrived_at": at(9, 20)}
        for p in people[::10]
    ]
    await insert_chunked(session, CheckIn, checked)
    decided = [
        {
            "person_id": p["id"],
            "session_id": round_.id,
            "status": AttendanceStatus.EXCUSED,
            "reason": "krank",
            "created_by": "bench",
        }
        for p in people[::100]
    ]
    await insert_chunked(session, AttendanceOverride, decided)
    return conference.slug, len(intervals)


@dataclass
class Timing:
    people: int
    intervals: int
    rows: int
    wall: float  # best of --repeat: attendance_table + summary
    cpu: float  # this process's CPU time in the best run (the database server's not counted)
    csv: float
    xlsx: float


async def timed_table(
    factory: async_sessionmaker[AsyncSession], slug: str, gc_off: bool
) -> tuple[Any, ...]:
    """One timed run in a fresh session, after a full collection of the setup's garbage."""
    async with factory() as session:
        conference = await get_by_slug(session, slug)
        gc.collect()
        if gc_off:
            gc.disable()
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            rows = await attendance_table(session, conference, NOW)
            forums = summary(rows)
            return time.perf_counter() - wall, time.process_time() - cpu, rows, forums
        finally:
            gc.enable()


async def measure(
    factory: async_sessionmaker[AsyncSession], slug: str, args: argparse.Namespace
) -> Timing:
    runs = [await timed_table(factory, slug, args.gc_off) for _ in range(args.repeat)]
    wall, cpu, rows, forums = min(runs, key=lambda run: float(run[0]))
    started = time.perf_counter()
    to_csv(rows)
    csv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    to_xlsx(rows, forums)
    xlsx_seconds = time.perf_counter() - started
    return Timing(0, 0, len(rows), wall, cpu, csv_seconds, xlsx_seconds)


async def bench_size(url: str, count: int, args: argparse.Namespace) -> tuple[str, Timing]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        factory = session_factory(engine)
        async with transaction(factory) as session:
            slug, intervals = await fill(session, count)
        timing = await measure(factory, slug, args)
    finally:
        await engine.dispose()
    timing.people, timing.intervals = count, intervals
    return engine.dialect.name, timing


def verdict(small: Timing, large: Timing) -> str:
    ratio, cpu_ratio = large.wall / small.wall, large.cpu / small.cpu
    bound = large.people / small.people
    judged = "linear or better" if ratio <= bound else f"{ratio / bound - 1:.0%} above linear"
    return (
        f"t({large.people})/t({small.people}) = {ratio:.2f} wall, {cpu_ratio:.2f} CPU "
        f"(linear bound {bound:.0f}): {judged}"
    )


async def main() -> None:
    args = parse_args()
    timings: list[Timing] = []
    print(
        f"{'backend':<10} {'people':>6} {'intervals':>9} {'rows':>6} {'table+summary':>13} "
        f"{'CPU':>7} {'µs/interval':>11} {'csv':>7} {'xlsx':>7}"
    )
    for count in args.sizes:
        async with scratch_database(args.database_url) as url:
            backend, timing = await bench_size(url, count, args)
        timings.append(timing)
        per_interval = timing.wall / timing.intervals * 1e6
        print(
            f"{backend:<10} {timing.people:>6} {timing.intervals:>9} {timing.rows:>6} "
            f"{timing.wall:>12.3f}s {timing.cpu:>6.3f}s {per_interval:>11.1f} "
            f"{timing.csv:>6.3f}s {timing.xlsx:>6.3f}s"
        )
    for small, large in itertools.pairwise(timings):
        print(verdict(small, large))


if __name__ == "__main__":
    asyncio.run(main())
