"""Organisers' attendance decisions (excused, or any status) with a reason; all kept as audit."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.models import AttendanceOverride, AttendanceStatus
from orchestrator.conferences.models import Conference, ConferenceSession
from orchestrator.conferences.schemas import single_line
from orchestrator.errors import InvalidInputError, NotFoundError
from orchestrator.participants.models import Person

log = logging.getLogger(__name__)

MAX_REASON = 1000
MAX_AUTHOR = 200
PersonSession = tuple[uuid.UUID, int]


class Decision(NamedTuple):
    """An organiser's override as the attendance rules see it."""

    status: AttendanceStatus
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One override as the audit trail shows it."""

    id: int
    person_id: uuid.UUID
    person_name: str
    session_key: str
    status: AttendanceStatus
    reason: str
    created_by: str
    created_at: datetime


def _one_line(field: str, value: str, limit: int, *, required: bool) -> str:
    try:
        text = single_line(value)
    except ValueError as error:
        raise InvalidInputError(f"{field}: {error}") from None
    if required and not text:
        raise InvalidInputError(f"{field}: eine Begründung ist erforderlich")
    if len(text) > limit:
        raise InvalidInputError(f"{field}: höchstens {limit} Zeichen")
    return text


def _status(value: AttendanceStatus | str) -> AttendanceStatus:
    try:
        return AttendanceStatus(value)
    except ValueError:
        allowed = ", ".join(status.value for status in AttendanceStatus)
        raise InvalidInputError(f"status: {value!r} ist keiner von {allowed}") from None


async def _target(
    session: AsyncSession, person_id: uuid.UUID, session_id: int
) -> tuple[Person, ConferenceSession]:
    person = await session.get(Person, person_id)
    if person is None:
        raise NotFoundError("Person nicht gefunden.")
    item = await session.get(ConferenceSession, session_id)
    if item is None or item.conference_id != person.conference_id:
        raise NotFoundError("Sitzung gibt es in der Konferenz dieser Person nicht.")
    return person, item


async def override(
    session: AsyncSession,
    person_id: uuid.UUID,
    session_id: int,
    status: AttendanceStatus | str,
    reason: str,
    created_by: str,
) -> AttendanceOverride:
    """Record an organiser's status for a person at a session; the latest one wins."""
    text = _one_line("reason", reason, MAX_REASON, required=True)
    author = _one_line("created_by", created_by, MAX_AUTHOR, required=False)
    decided = _status(status)
    _person, item = await _target(session, person_id, session_id)
    entry = AttendanceOverride(
        person_id=person_id, session_id=item.id, status=decided, reason=text, created_by=author
    )
    session.add(entry)
    await session.flush()
    log.info(
        "attendance.overridden",
        extra={"override": entry.id, "session": item.key, "status": decided.value},
    )
    return entry


async def audit_trail(session: AsyncSession, conference: Conference) -> list[AuditEntry]:
    """Every override of the conference, oldest first (none is ever changed or removed)."""
    statement = (
        select(
            AttendanceOverride,
            Person.first_name,
            Person.last_name,
            Person.email,
            ConferenceSession.key,
        )
        .join(Person, Person.id == AttendanceOverride.person_id)
        .join(ConferenceSession, ConferenceSession.id == AttendanceOverride.session_id)
        .where(ConferenceSession.conference_id == conference.id)
        .order_by(AttendanceOverride.created_at, AttendanceOverride.id)
    )
    return [
        AuditEntry(
            id=entry.id,
            person_id=entry.person_id,
            person_name=f"{first} {last}".strip() or email,
            session_key=key,
            status=entry.status,
            reason=entry.reason,
            created_by=entry.created_by,
            created_at=entry.created_at,
        )
        for entry, first, last, email, key in await session.execute(statement)
    ]


async def decisions(
    session: AsyncSession, session_ids: Sequence[int]
) -> defaultdict[PersonSession, list[Decision]]:
    """The overrides of these sessions per person and session, oldest first (one query)."""
    statement = (
        select(
            AttendanceOverride.person_id,
            AttendanceOverride.session_id,
            AttendanceOverride.status,
            AttendanceOverride.reason,
            AttendanceOverride.created_at,
        )
        .where(AttendanceOverride.session_id.in_(session_ids))
        .order_by(AttendanceOverride.created_at, AttendanceOverride.id)
    )
    found: defaultdict[PersonSession, list[Decision]] = defaultdict(list)
    for person_id, session_id, status, reason, created_at in await session.execute(statement):
        found[(person_id, session_id)].append(Decision(status, reason, created_at))
    return found
