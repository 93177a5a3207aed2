"""The organiser's list of people: filters, one page, the count of matches.

One statement for the page (each row with its forums, waiting list and failed-mail flags as
correlated subqueries on indexed foreign keys) and one for the count: no query per person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Forum
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    AttendanceMode,
    Person,
    Role,
    Rsvp,
)
from orchestrator.participants.search_keys import query_forms

PAGE_SIZE = 50


class Invitation(StrEnum):
    """Where a person's invitation stands."""

    NOT_INVITED = "not_invited"
    INVITED = "invited"
    MAIL_FAILED = "mail_failed"  # some mail to them could not be delivered


@dataclass(frozen=True)
class Filters:
    """What the organiser narrowed the list to; empty fields do not filter."""

    q: str = ""
    forum: str = ""  # key of an assigned forum
    waiting: bool = False  # only people on a waiting list
    rsvp: Rsvp | None = None
    invitation: Invitation | None = None
    role: Role | None = None
    mode: AttendanceMode | None = None
    consent: bool | None = None


@dataclass(frozen=True)
class PersonRow:
    id: uuid.UUID
    first_name: str
    last_name: str
    email: str
    organisation: str
    role: Role
    attendance_mode: AttendanceMode
    rsvp: Rsvp
    consent: bool
    invited_at: datetime | None
    forums: str  # titles of the assigned forums, comma-separated
    waitlisted: bool
    mail_failed: bool

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


def _seat(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Assignment.person_id == Person.id, *where)


def _failed() -> ColumnElement[bool]:
    return exists().where(
        OutboxMessage.person_id == Person.id, OutboxMessage.state == OutboxState.FAILED
    )


def _conditions(conference_id: int, filters: Filters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Person.conference_id == conference_id]
    if forms := query_forms(filters.q):
        # Case- and accent-insensitive on both backends (search_keys.py); "%" and "_"
        # typed by the user match themselves.
        where.append(or_(false(), *(Person.search_key.contains(f, autoescape=True) for f in forms)))
    if filters.forum:
        forum_ids = select(Forum.id).where(
            Forum.conference_id == conference_id, Forum.key == filters.forum
        )
        where.append(
            _seat(
                Assignment.status == AssignmentStatus.ASSIGNED, Assignment.forum_id.in_(forum_ids)
            )
        )
    if filters.waiting:
        where.append(_seat(Assignment.status == AssignmentStatus.WAITLISTED))
    if filters.rsvp is not None:
        where.append(Person.rsvp == filters.rsvp)
    if filters.role is not None:
        where.append(Person.role == filters.role)
    if filters.mode is not None:
        where.append(Person.attendance_mode == filters.mode)
    if filters.consent is not None:
        where.append(Person.consent.is_(filters.consent))
    if filters.invitation is Invitation.NOT_INVITED:
        where.append(Person.invited_at.is_(None))
    elif filters.invitation is Invitation.INVITED:
        where.append(Person.invited_at.is_not(None))
    elif filters.invitation is Invitation.MAIL_FAILED:
        where.append(_failed())
    return where


async def count(session: AsyncSession, conference_id: int, filters: Filters) -> int:
    """How many people match."""
    statement = select(func.count()).select_from(Person).where(*_conditions(conference_id, filters))
    return int((await session.execute(statement)).scalar_one())


async def page(
    session: AsyncSession, conference_id: int, filters: Filters, number: int = 1
) -> Sequence[PersonRow]:
    """Page `number` (from 1) of the matching people, by last name, first name, email."""
    forums = (
        select(func.aggregate_strings(Forum.title, ", "))
        .select_from(Assignment)
        .join(Forum, Forum.id == Assignment.forum_id)
        .where(Assignment.person_id == Person.id, Assignment.status == AssignmentStatus.ASSIGNED)
        .scalar_subquery()
    )
    statement = (
        select(
            Person.id,
            Person.first_name,
            Person.last_name,
            Person.email,
            Person.organisation,
            Person.role,
            Person.attendance_mode,
            Person.rsvp,
            Person.consent,
            Person.invited_at,
            func.coalesce(forums, ""),
            _seat(Assignment.status == AssignmentStatus.WAITLISTED),
            _failed(),
        )
        .where(*_conditions(conference_id, filters))
        .order_by(Person.last_name, Person.first_name, Person.email)
        .offset((max(number, 1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    rows = await session.execute(statement)
    return [PersonRow(*tuple(row)) for row in rows]


@dataclass(frozen=True)
class Listing:
    rows: Sequence[PersonRow]
    total: int
    page: int
    pages: int

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * PAGE_SIZE + len(self.rows)


async def search(
    session: AsyncSession, conference_id: int, filters: Filters, number: int = 1
) -> Listing:
    """One page of the people who match, and how many match in all (two statements)."""
    total = await count(session, conference_id, filters)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(max(number, 1), pages)
    return Listing(await page(session, conference_id, filters, number), total, number, pages)
