"""invite_everyone: chunk by chunk, past people whose invitation fails at once, idempotent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import SessionKind
from orchestrator.invitations.runs import invite_everyone
from orchestrator.invitations.service import Report
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.models import Person
from tests.conftest import load_sample

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
GOOD = ["anna", "ben", "carla", "dora", "emil"]


async def _everyone(
    sessions: async_sessionmaker[AsyncSession], chunk: int, now: datetime = NOW
) -> tuple[Report, Report]:
    return await invite_everyone(
        sessions,
        "ik-heinsberg-2027",
        base_url="https://konferenz.example.org",
        message_domain="kreis.example",
        sender="Konferenz <noreply@kreis.example>",
        clock=FrozenClock(now),
        chunk=chunk,
    )


async def _run(sessions: async_sessionmaker[AsyncSession], chunk: int) -> tuple[int, int, int]:
    invited, changes = await _everyone(sessions, chunk)
    return invited.people, invited.queued, len(invited.failed) + changes.queued


@pytest.mark.asyncio
@pytest.mark.parametrize("chunk", [1, 2, 250])
async def test_every_chunk_goes_on_past_failed_people(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], chunk: int
) -> None:
    """Two unusable addresses sort first: a chunk of only them must not end the run, and
    each is in the outbox as failed (with why), once however often the run is repeated."""
    conference = await load_sample(session)
    for broken in ("0 no address", "00\r\nBcc: x@example.org"):
        session.add(Person(conference_id=conference.id, email=broken, last_name="Kaputt"))
    for local in GOOD:
        session.add(Person(conference_id=conference.id, email=f"{local}@example.org"))
    await session.commit()
    await run_assignment(session, conference)
    await session.commit()

    assert await _run(sessions, chunk) == (len(GOOD), len(GOOD) + 2, 2)
    async with sessions() as check:
        rows = (await check.execute(select(OutboxMessage.recipient, OutboxMessage.state))).all()
        assert sorted(rows) == [
            ("0 no address", OutboxState.FAILED),
            ("00 Bcc: x@example.org", OutboxState.FAILED),
            *((f"{local}@example.org", OutboxState.QUEUED) for local in GOOD),
        ]
        pending = select(func.count()).where(Person.invited_at.is_(None))
        assert (await check.execute(pending)).scalar_one() == 2  # the two broken ones
    # A second run adds nothing (the two fail again, already in the outbox).
    assert await _run(sessions, chunk) == (0, 0, 2)


@pytest.mark.asyncio
async def test_a_chunk_of_zero_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(ValueError, match="chunk"):
        await _run(sessions, 0)


@pytest.mark.asyncio
async def test_a_later_run_updates_calendars_changed_without_a_sync(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The sync pass covers people invited before the run, not those it just invited."""
    conference = await load_sample(session)
    for local in GOOD:
        session.add(Person(conference_id=conference.id, email=f"{local}@example.org"))
    await session.commit()
    await run_assignment(session, conference)
    await session.commit()
    invited, changes = await _everyone(sessions, 2)
    assert (invited.queued, changes.queued) == (len(GOOD), 0)
    plenary = next(item for item in conference.sessions if item.kind is SessionKind.PLENARY)
    plenary.starts_at += timedelta(minutes=15)  # changed behind the service's back
    await session.commit()
    later = NOW + timedelta(hours=1)
    invited, changes = await _everyone(sessions, 2, later)
    assert (invited.queued, changes.queued, changes.updated) == (0, len(GOOD), len(GOOD))


@pytest.mark.asyncio
async def test_two_runs_at_once_invite_each_person_once(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Two organisers press "send" together: no error, one invitation per person."""
    conference = await load_sample(session)
    many = [f"person{number:02d}" for number in range(24)]
    for local in many:
        session.add(Person(conference_id=conference.id, email=f"{local}@example.org"))
    await session.commit()
    await run_assignment(session, conference)
    await session.commit()
    first, second = await asyncio.gather(_everyone(sessions, 3), _everyone(sessions, 3))
    assert first[0].people + second[0].people == len(many)
    async with sessions() as check:
        rows = list(await check.scalars(select(OutboxMessage.recipient)))
    assert sorted(rows) == [f"{local}@example.org" for local in many]
