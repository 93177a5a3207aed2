"""The balancer on the database (SQLite and PostgreSQL): runs, re-runs, breakout rounds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orchestrator.conferences.models import Conference
from orchestrator.participants.assignment import AssignmentReport, run_assignment
from orchestrator.participants.models import AssignmentSource, AssignmentStatus, ForumChoice
from tests.assignment_helpers import (
    add_demo,
    add_people,
    assert_capacities_kept,
    forum_ids,
    guest,
    row_of,
    sample,
    set_capacity,
    snapshot,
)

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
