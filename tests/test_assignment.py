"""The balancer on the database (SQLite and PostgreSQL): runs, re-runs, overrides."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orchestrator.conferences.models import Conference, Forum
from orchestrator.conferences.repository import forum_fill, get_by_slug
from orchestrator.conferences.service import import_file
from orchestrator.demo.people import generate
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.participants.assignment import (
    AssignmentReport,
    clear_override,
    run_assignment,
    set_override,
)
from orchestrator.participants.models import (
    Assignment,
    AssignmentSource,
    AssignmentStatus,
    ForumChoice,
    Person,
    Role,
)
from tests.conftest import SAMPLE_TOML

SLUG = "ik-heinsberg-2027"

TWO_ROUNDS = """
sessions = [
  {key = "morning", kind = "breakout_round", title = "Vormittag", start = "10:00", end = "11:00"},
  {key = "afternoon", kind = "breakout_round", title = "Mittag", start = "14:00", end = "15:00"},
]
forums = [
  {key = "a", title = "A", capacity = 2, session = "morning"},
  {key = "b", title = "B", capacity = 3, session = "morning"},
  {key = "c", title = "C", capacity = 1, session = "afternoon"},
  {key = "d", title = "D", capacity = 4, session = "afternoon"},
]

[conference]
slug = "zwei-runden"
title = "Zwei Runden"
date = "2027-05-06"
"""


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


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def counted(report: AssignmentReport) -> int:
    """The sum of the report's outcome counters, which must equal its total."""
    return sum(value for key, value in report.as_dict().items() if key not in {"total", "forums"})


@pytest.mark.asyncio
async def test_run_fills_forums_within_capacity(session: AsyncSession) -> None:
    conference = await sample(session)
    people = await add_demo(session, conference, 180)
    report = await run_assignment(session, conference)
    await session.commit()
    await assert_capacities_kept(session, conference)
    assert report.total == len(people) == counted(report)
    assert report.first_choice > report.second_choice > 0
    rows = await snapshot(session)
    assert len(rows) == len(people)
    assert {row[5] for row in rows} == {AssignmentSource.BALANCER}
    assert [(f.key, f.capacity) for f in report.forums] == [
        ("sprache", 40),
        ("werte", 30),
        ("bildung", 40),
        ("arbeit", 50),
        ("bleibeperspektive", 30),
    ]
    assert sum(f.assigned for f in report.forums) == report.total - report.waitlisted
    assert report.as_dict()["forums"][0]["key"] == "sprache"


@pytest.mark.asyncio
async def test_choice_ranks_are_stored(session: AsyncSession) -> None:
    conference = await sample(session)
    people = await add_demo(session, conference, 120)
    report = await run_assignment(session, conference)
    await session.commit()
    ranks = Counter(row[6] for row in await snapshot(session))
    assert ranks == +Counter(
        {1: report.first_choice, 2: report.second_choice, None: report.overflow + report.waitlisted}
    )
    assert sum(ranks.values()) == len(people)


@pytest.mark.asyncio
async def test_a_full_house_puts_the_rest_on_the_waiting_list(session: AsyncSession) -> None:
    conference = await sample(session)
    await add_demo(session, conference, 230)
    report = await run_assignment(session, conference)
    assert [f.assigned for f in report.forums] == [f.capacity for f in report.forums]
    assert report.waitlisted == 230 - 190
    waiting = await run_assignment(session, conference, overflow="waitlist")
    await session.commit()
    assert waiting.overflow == 0
    assert waiting.waitlisted == report.waitlisted + report.overflow
    waitlisted = [row for row in await snapshot(session) if row[4] == AssignmentStatus.WAITLISTED]
    assert len(waitlisted) == waiting.waitlisted
    assert {row[3] for row in waitlisted} == {None}
    await assert_capacities_kept(session, conference)


@pytest.mark.asyncio
async def test_a_rerun_changes_nothing(session: AsyncSession) -> None:
    conference = await sample(session)
    await add_demo(session, conference, 200)
    first = await run_assignment(session, conference)
    await session.commit()
    before = await snapshot(session)
    second = await run_assignment(session, conference)
    await session.commit()
    assert await snapshot(session) == before
    assert second == first


async def counted_run(
    session: AsyncSession, engine: AsyncEngine, conference: Conference
) -> Counter[str]:
    """Statements by their first word (SELECT, INSERT, ...) of one run and its commit."""
    with statements(engine) as seen:
        await run_assignment(session, conference)
        await session.commit()
    return Counter(statement.split()[0].upper() for statement in seen)


@pytest.mark.asyncio
async def test_a_run_needs_a_handful_of_statements(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    conference = await sample(session)
    await add_demo(session, conference, 400)
    first = await counted_run(session, engine, conference)
    assert first["INSERT"] == 1 and first.total() <= 8, first
    assert set(await counted_run(session, engine, conference)) == {"SELECT"}
    for key in ("sprache", "arbeit"):
        await set_capacity(session, conference, key, 10)
    moved = await counted_run(session, engine, conference)
    assert moved["UPDATE"] == 1 and moved.total() <= 8, moved


@pytest.mark.asyncio
async def test_rows_are_updated_in_place_and_dropped_without_choices(
    session: AsyncSession,
) -> None:
    conference = await sample(session)
    mover, quitter = await add_people(
        session,
        conference,
        [guest("mover@example.org", "sprache"), guest("quitter@example.org", "arbeit")],
    )
    await run_assignment(session, conference)
    await session.commit()
    before = await row_of(session, mover.id)
    assert before is not None
    first_id = before.id
    await session.execute(
        update(ForumChoice)
        .where(ForumChoice.person_id == mover.id)
        .values(forum_id=forum_ids(conference)["bildung"])
    )
    await session.execute(delete(ForumChoice).where(ForumChoice.person_id == quitter.id))
    report = await run_assignment(session, conference)
    await session.commit()
    after = await row_of(session, mover.id)
    assert after is not None
    assert (after.id, after.forum_id) == (first_id, forum_ids(conference)["bildung"])
    assert await row_of(session, quitter.id) is None
    assert (report.first_choice, report.no_choice) == (1, 1)


@pytest.mark.asyncio
async def test_organisers_are_not_balanced(session: AsyncSession) -> None:
    conference = await sample(session)
    (organiser,) = await add_people(
        session, conference, [guest("orga@example.org", "werte", role="organiser")]
    )
    report = await run_assignment(session, conference)
    assert report.total == 0
    assert await row_of(session, organiser.id) is None


@pytest.mark.asyncio
async def test_an_override_survives_a_rerun_and_takes_a_seat(session: AsyncSession) -> None:
    conference = await sample(session)
    people = await add_demo(session, conference, 300)
    await run_assignment(session, conference)
    await session.commit()
    werte = forum_ids(conference)["werte"]
    rows = {row[1]: row for row in await snapshot(session)}
    outsider = next(p for p in people if rows[p.id][3] != werte)
    with pytest.raises(ConflictError, match="voll"):
        await set_override(session, conference, outsider.id, "werte")
    pinned = await set_override(session, conference, outsider.id, "werte", force=True)
    await session.commit()
    assert (pinned.id, pinned.source, pinned.forum_id) == (
        rows[outsider.id][0],
        AssignmentSource.OVERRIDE,
        werte,
    )
    assert (await fill_by_key(session, conference))["werte"] == 31
    report = await run_assignment(session, conference)
    await session.commit()
    kept = await row_of(session, outsider.id)
    assert kept is not None
    assert (kept.source, kept.forum_id, kept.status) == (
        AssignmentSource.OVERRIDE,
        werte,
        AssignmentStatus.ASSIGNED,
    )
    assert report.kept == 1
    assert (await fill_by_key(session, conference))["werte"] == 30


@pytest.mark.asyncio
async def test_override_into_the_own_forum_needs_no_free_seat(session: AsyncSession) -> None:
    conference = await sample(session)
    await set_capacity(session, conference, "werte", 1)
    (inside,) = await add_people(session, conference, [guest("in@example.org", "werte")])
    await run_assignment(session, conference)
    row = await set_override(session, conference, inside.id, "werte")
    assert (row.source, row.choice_rank) == (AssignmentSource.OVERRIDE, 1)


@pytest.mark.asyncio
async def test_override_onto_the_waiting_list_and_back(session: AsyncSession) -> None:
    conference = await sample(session)
    (someone,) = await add_people(session, conference, [guest("x@example.org", "sprache")])
    row = await set_override(session, conference, someone.id, None)
    assert (row.forum_id, row.status, row.choice_rank) == (None, AssignmentStatus.WAITLISTED, None)
    report = await run_assignment(session, conference)
    assert (report.kept, report.first_choice) == (1, 0)
    await clear_override(session, conference, someone.id)
    await session.commit()
    assert await row_of(session, someone.id) is None
    report = await run_assignment(session, conference)
    await session.commit()
    back = await row_of(session, someone.id)
    assert back is not None
    assert (back.source, back.forum_id, back.choice_rank) == (
        AssignmentSource.BALANCER,
        forum_ids(conference)["sprache"],
        1,
    )
    assert (report.kept, report.first_choice) == (0, 1)


@pytest.mark.asyncio
async def test_unknown_forum_or_person_is_not_found(session: AsyncSession) -> None:
    conference = await sample(session)
    (someone,) = await add_people(session, conference, [guest("x@example.org", "sprache")])
    with pytest.raises(NotFoundError):
        await set_override(session, conference, someone.id, "gibt-es-nicht")
    with pytest.raises(NotFoundError):
        await set_override(session, conference, uuid.uuid4(), "sprache")
    with pytest.raises(NotFoundError):
        await clear_override(session, conference, uuid.uuid4())
    assert await snapshot(session) == []


@pytest.mark.asyncio
async def test_each_breakout_round_is_balanced_on_its_own(
    session: AsyncSession, tmp_path: Path
) -> None:
    toml = tmp_path / "two-rounds.toml"
    toml.write_text(TWO_ROUNDS, encoding="utf-8")
    conference = await sample(session, toml)
    people = await add_people(
        session,
        conference,
        [guest(f"p{i}@example.org", *(("a", "c") if i % 2 else ("c", "b"))) for i in range(8)],
    )
    report = await run_assignment(session, conference)
    await session.commit()
    await assert_capacities_kept(session, conference)
    assert report.total == 16 == counted(report)
    rounds = {forum.id: forum.session_id for forum in conference.forums}
    rows = await snapshot(session)
    assert len(rows) == 16
    assert all(rounds[row[3]] == row[2] for row in rows if row[3] is not None)
    assert Counter(row[1] for row in rows) == {p.id: 2 for p in people}
    # Morning: 2 get a (rank 1), 3 get b (rank 2); afternoon: 1 gets c (rank 1 or 2), 4 go to d.
    assert report.first_choice + report.second_choice == 6
    assert report.first_choice in (2, 3)
    assert (report.overflow, report.waitlisted, report.no_choice) == (4, 6, 0)


@pytest.mark.asyncio
async def test_self_service_choices_are_kept(session: AsyncSession) -> None:
    conference = await sample(session)
    (someone,) = await add_people(session, conference, [guest("x@example.org", "sprache")])
    werte = next(forum for forum in conference.forums if forum.key == "werte")
    assert werte.session_id is not None
    session.add(
        Assignment(
            person_id=someone.id,
            session_id=werte.session_id,
            forum_id=werte.id,
            source=AssignmentSource.SELF_SERVICE,
        )
    )
    await session.commit()
    report = await run_assignment(session, conference)
    row = await row_of(session, someone.id)
    assert row is not None
    assert (row.source, row.forum_id, report.kept) == (AssignmentSource.SELF_SERVICE, werte.id, 1)
