"""Manual placements on the database: overrides and self-service choices survive a re-run."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.participants.assignment import clear_override, run_assignment, set_override
from orchestrator.participants.models import Assignment, AssignmentSource, AssignmentStatus
from tests.assignment_helpers import (
    add_demo,
    add_people,
    fill_by_key,
    forum_ids,
    guest,
    row_of,
    sample,
    set_capacity,
    snapshot,
)


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
