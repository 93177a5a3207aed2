"""Figures that include every accepted event: pending events are folded before reading.

The background folder runs a moment after events arrive (it lets a burst gather), so the
intervals alone lag behind what event_sync was told is stored. Readers of attendance (the
table, its exports and summaries, in the API and the CLI) call `fold_before_reading` first:
one indexed probe when nothing is pending; otherwise a fold that waits for a fold already
under way (PostgreSQL: the folder's advisory lock; SQLite: its one writer) and then folds
the rest. Claiming marks events processed in the fold's own transaction, so no event is
folded twice, and a reader never sees a claim without its intervals.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.folding import fold_all
from orchestrator.attendance.models import JitsiEvent
from orchestrator.attendance.table import Row, attendance_table
from orchestrator.clock import Clock
from orchestrator.conferences.models import Conference
from orchestrator.rooms.templates import RoomTemplate

Sessions = async_sessionmaker[AsyncSession]


async def anything_pending(session: AsyncSession) -> bool:
    """Whether any stored event is not folded yet (one probe on the `processed` index)."""
    probe = select(JitsiEvent.id).where(JitsiEvent.processed.is_(False)).limit(1)
    return await session.scalar(probe) is not None


async def fold_before_reading(
    sessions: Sessions, clock: Clock, templates: Mapping[str, RoomTemplate] | None
) -> int:
    """Fold every event stored so far, waiting for a concurrent fold; the number folded."""
    async with sessions() as session:
        if not await anything_pending(session):
            return 0
    return await fold_all(sessions, clock, templates, wait=True)


async def current_table(
    session: AsyncSession,
    sessions: Sessions,
    conference: Conference,
    clock: Clock,
    templates: Mapping[str, RoomTemplate] | None,
) -> list[Row]:
    """The attendance table with every event accepted before this call.

    The fold commits in transactions of its own (`sessions`); `session` reads afterwards
    and must not hold a write lock (SQLite) meanwhile.
    """
    await fold_before_reading(sessions, clock, templates)
    return await attendance_table(session, conference, clock())
