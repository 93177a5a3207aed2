"""The organiser's view of the attendance table: filtered, paged, and one row's history.

The table itself is built by table.py (every person at every session, reconciled); this
narrows it by session, forum and status, cuts a page, and gathers what was decided about one
person at one session (overrides and undone check-ins, each with who, when and why).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance import checkin
from orchestrator.attendance.models import AttendanceOverride, AttendanceStatus
from orchestrator.attendance.table import Row, attendance_table
from orchestrator.conferences.models import Conference, ConferenceSession
from orchestrator.errors import InvalidInputError, NotFoundError

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    """What the organiser narrowed the table to; empty means everything."""

    session: str = ""
    forum: str = ""
    status: str = ""

    def keep(self, row: Row) -> bool:
        return (
            (not self.session or row.session_key == self.session)
            and (not self.forum or row.forum_key == self.forum)
            and (not self.status or row.record.status.value == self.status)
        )


@dataclass(frozen=True)
class Page:
    """One page of the filtered rows, and where it stands among them."""

    rows: Sequence[Row]
    total: int
    number: int
    pages: int


@dataclass(frozen=True)
class HistoryEntry:
    """A decision about one person at one session: an override or an undone check-in."""

    kind: str  # override | undo
    at: datetime
    actor: str
    reason: str
    status: AttendanceStatus | None = None  # the override's status
    arrived_at: datetime | None = None  # the undone check-in's arrival


def filters(conference: Conference, session: str, forum: str, status: str) -> Filters:
    """The filters as asked, refusing a session, forum or status the conference lacks."""
    if session and session not in {item.key for item in conference.sessions}:
        raise InvalidInputError("session: gibt es in dieser Konferenz nicht")
    if forum and forum not in {item.key for item in conference.forums}:
        raise InvalidInputError("forum: gibt es in dieser Konferenz nicht")
    if status and status not in {item.value for item in AttendanceStatus}:
        raise InvalidInputError("status: unbekannter Status")
    return Filters(session, forum, status)


async def filtered_rows(
    session: AsyncSession, conference: Conference, chosen: Filters, now: datetime
) -> list[Row]:
    """Every row of the table that the filters keep, in programme and name order."""
    return [row for row in await attendance_table(session, conference, now) if chosen.keep(row)]


def page_of(rows: Sequence[Row], number: int, size: int = PAGE_SIZE) -> Page:
    """The page `number` (from 1; out-of-range numbers give the nearest page)."""
    pages = max(1, math.ceil(len(rows) / size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(rows[start : start + size], len(rows), number, pages)


async def row_of(
    session: AsyncSession,
    conference: Conference,
    person_id: uuid.UUID,
    session_key: str,
    now: datetime,
) -> Row:
    """The table's row of one person at one session (404 when the table has none)."""
    rows = await filtered_rows(session, conference, Filters(session=session_key), now)
    found = next((row for row in rows if row.person_id == person_id), None)
    if found is None:
        raise NotFoundError("Diese Person hat in dieser Sitzung keinen Eintrag.")
    return found


async def history(
    session: AsyncSession, person_id: uuid.UUID, item: ConferenceSession
) -> list[HistoryEntry]:
    """Overrides and undone check-ins of a person at a session, oldest first."""
    statement = (
        select(AttendanceOverride)
        .where(AttendanceOverride.person_id == person_id, AttendanceOverride.session_id == item.id)
        .order_by(AttendanceOverride.created_at, AttendanceOverride.id)
    )
    entries = [
        HistoryEntry("override", o.created_at, o.created_by, o.reason, status=o.status)
        for o in (await session.execute(statement)).scalars()
    ]
    entries += [
        HistoryEntry("undo", u.undone_at, u.undone_by, u.reason, arrived_at=u.arrived_at)
        for u in await checkin.undos(session, person_id, item.id)
    ]
    return sorted(entries, key=lambda entry: entry.at)


async def is_checked_in(
    session: AsyncSession, person_id: uuid.UUID, item: ConferenceSession
) -> bool:
    """Whether the person has a check-in (that could be undone) for the session."""
    return person_id in await checkin.arrivals(session, item, [person_id])
