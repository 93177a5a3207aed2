"""invite_everyone: chunk by chunk, past people who cannot be invited, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import FrozenClock
from orchestrator.invitations.service import invite_everyone
from orchestrator.mail.models import OutboxMessage
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.models import Person
from tests.conftest import load_sample

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
GOOD = ["anna", "ben", "carla", "dora", "emil"]


async def _run(sessions: async_sessionmaker[AsyncSession], chunk: int) -> tuple[int, int, int]:
    invited, changes = await invite_everyone(
        sessions,
        "ik-heinsberg-2027",
        base_url="https://konferenz.example.org",
        message_domain="kreis.example",
        sender="Konferenz <noreply@kreis.example>",
        clock=FrozenClock(NOW),
        chunk=chunk,
    )
    return invited.people, invited.queued, len(invited.skipped) + changes.queued


@pytest.mark.asyncio
@pytest.mark.parametrize("chunk", [1, 2, 250])
async def test_every_chunk_goes_on_past_skipped_people(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], chunk: int
) -> None:
    """Two unusable addresses sort first: a chunk of only them must not end the run."""
    conference = await load_sample(session)
    for broken in ("0 no address", "00\r\nBcc: x@example.org"):
        session.add(Person(conference_id=conference.id, email=broken, last_name="Kaputt"))
    for local in GOOD:
        session.add(Person(conference_id=conference.id, email=f"{local}@example.org"))
    await session.commit()
    await run_assignment(session, conference)
    await session.commit()

    assert await _run(sessions, chunk) == (len(GOOD), len(GOOD), 2)
    async with sessions() as check:
        rows = await check.scalars(select(OutboxMessage.recipient))
        assert sorted(rows) == [f"{local}@example.org" for local in GOOD]
        pending = select(func.count()).where(Person.invited_at.is_(None))
        assert (await check.execute(pending)).scalar_one() == 2  # the two broken ones
    # A second run adds nothing (and skips the same two again).
    assert await _run(sessions, chunk) == (0, 0, 2)


@pytest.mark.asyncio
async def test_a_chunk_of_zero_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(ValueError, match="chunk"):
        await _run(sessions, 0)
