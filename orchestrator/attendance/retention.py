"""DSGVO (SPEC §4.11): retention ends a conference's attendance data; erasure ends a person's.

When a conference's retention period ends (its last session's end + `retention_days`),
its presence intervals, check-ins, overrides and the raw Jitsi events of its rooms are
deleted and its people anonymised in place: name "gelöscht", a placeholder address under
example.invalid, no organisation, a fresh token (old links die). Their rows, choices and
assignments stay, so registrations, RSVPs and forum fill can still be counted.

Erasing a person deletes their intervals, check-ins, overrides and the raw events whose
occupant is them, and drops their entry from room-level events (event_sync lists every
occupant with name and email when a room is destroyed); then the person row goes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from orchestrator.attendance.models import (
    AttendanceOverride,
    CheckIn,
    CheckInUndo,
    JitsiEvent,
    PresenceInterval,
)
from orchestrator.clock import Clock
from orchestrator.conferences.models import Conference
from orchestrator.db import transaction
from orchestrator.participants.models import Person, new_personal_token
from orchestrator.rooms.models import Room

log = logging.getLogger(__name__)

ERASED_NAME = "gelöscht"
PLACEHOLDER_DOMAIN = "example.invalid"


@dataclass
class RetentionReport:
    """What one retention run removed; a second run over the same data counts nothing."""

    conferences: list[str] = field(default_factory=list)  # slugs past their retention
    intervals: int = 0
    check_ins: int = 0
    overrides: int = 0
    events: int = 0
    people: int = 0

    @property
    def changed(self) -> bool:
        return any((self.intervals, self.check_ins, self.overrides, self.events, self.people))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retention_ends(conference: Conference) -> datetime | None:
    """The last session's end plus the retention period; None without sessions."""
    ends = [item.ends_at for item in conference.sessions]
    return max(ends) + timedelta(days=conference.retention_days) if ends else None


def placeholder_email(person_id: uuid.UUID) -> str:
    return f"geloescht-{person_id.hex}@{PLACEHOLDER_DOMAIN}"


async def _delete(session: AsyncSession, statement: Delete) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount


async def _anonymise_people(session: AsyncSession, conference_id: int) -> int:
    statement = select(Person.id).where(
        Person.conference_id == conference_id,
        Person.email.not_like(f"%@{PLACEHOLDER_DOMAIN}"),
    )
    ids = list((await session.execute(statement)).scalars())
    if ids:
        values = [
            {
                "id": person_id,
                "first_name": ERASED_NAME,
                "last_name": "",
                "email": placeholder_email(person_id),
                "organisation": "",
                "token": new_personal_token(),
            }
            for person_id in ids
        ]
        await session.execute(update(Person), values)
    return len(ids)


async def _expire(session: AsyncSession, conference: Conference, report: RetentionReport) -> None:
    room_ids = [room.id for room in conference.rooms]
    room_names = [room.name for room in conference.rooms]
    session_ids = [item.id for item in conference.sessions]
    report.conferences.append(conference.slug)
    report.intervals += await _delete(
        session,
        delete(PresenceInterval).where(
            or_(
                PresenceInterval.conference_id == conference.id,
                PresenceInterval.room_id.in_(room_ids),
            )
        ),
    )
    report.check_ins += await _delete(
        session, delete(CheckIn).where(CheckIn.session_id.in_(session_ids))
    )
    report.overrides += await _delete(
        session, delete(AttendanceOverride).where(AttendanceOverride.session_id.in_(session_ids))
    )
    await _delete(session, delete(CheckInUndo).where(CheckInUndo.session_id.in_(session_ids)))
    # Jitsi lowercases room names; compare so in case an event kept its original spelling.
    report.events += await _delete(
        session, delete(JitsiEvent).where(func.lower(JitsiEvent.room_name).in_(room_names))
    )
    report.people += await _anonymise_people(session, conference.id)


async def apply_retention(session: AsyncSession, now: datetime) -> RetentionReport:
    """Delete attendance and raw events, anonymise people, of conferences past retention."""
    statement = select(Conference).options(
        selectinload(Conference.sessions), selectinload(Conference.rooms)
    )
    report = RetentionReport()
    for conference in (await session.execute(statement)).scalars():
        ends = retention_ends(conference)
        if ends is not None and ends < now:
            await _expire(session, conference, report)
    await session.flush()
    if report.changed:
        log.info("attendance.retention_applied", extra=report.as_dict())
    return report


async def retention_job(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    """The scheduled job: one retention run in its own transaction."""
    async with transaction(sessions) as session:
        await apply_retention(session, clock())


def without_person(value: Any, person_key: str) -> Any:
    """A JSON value with every object whose `id` is the person's left out."""
    if isinstance(value, dict):
        return {
            key: without_person(item, person_key)
            for key, item in value.items()
            if not _is_person(item, person_key)
        }
    if isinstance(value, list):
        return [
            without_person(item, person_key) for item in value if not _is_person(item, person_key)
        ]
    return value


def _is_person(value: Any, person_key: str) -> bool:
    return isinstance(value, dict) and value.get("id") == person_key


async def _scrub_room_events(session: AsyncSession, person: Person, person_key: str) -> None:
    rooms = select(Room.name).where(Room.conference_id == person.conference_id)
    statement = select(JitsiEvent).where(
        func.lower(JitsiEvent.room_name).in_(rooms), JitsiEvent.occupant_id.is_(None)
    )
    for event in (await session.execute(statement)).scalars():
        scrubbed = without_person(event.payload, person_key)
        if scrubbed != event.payload:
            event.payload = scrubbed  # a new object: the JSON column notices the change


async def erase_person(session: AsyncSession, person: Person) -> None:
    """Remove a person with their presence, check-ins, overrides and raw events."""
    person_key = str(person.id)  # what the JWT's context.user.id and event_sync carry
    await _delete(
        session,
        delete(PresenceInterval).where(
            or_(
                PresenceInterval.person_id == person.id, PresenceInterval.occupant_key == person_key
            )
        ),
    )
    await _delete(session, delete(CheckIn).where(CheckIn.person_id == person.id))
    await _delete(session, delete(CheckInUndo).where(CheckInUndo.person_id == person.id))
    await _delete(
        session, delete(AttendanceOverride).where(AttendanceOverride.person_id == person.id)
    )
    await _delete(session, delete(JitsiEvent).where(JitsiEvent.occupant_id == person_key))
    await _scrub_room_events(session, person, person_key)
    await session.delete(person)
    await session.flush()
    log.info("attendance.person_erased", extra={"conference_id": person.conference_id})
