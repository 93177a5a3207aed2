"""The balancer run as an organiser starts it: first a preview, then the run itself.

The preview runs `run_assignment` and `followups.after_change` in a SAVEPOINT and rolls it
back: what it shows (who moves where, who gets a seat, who waits, which mails) is exactly
what the run would do, and nothing of it is stored. Applying computes the preview again in
the same transaction (under the conference lock the balancer takes) and runs only when it
still matches the one the organiser saw (its digest); otherwise it refuses, so the page can
show the new preview.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, ConferenceSession, Forum
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.followups import MailContext, after_change
from orchestrator.mail.models import OutboxMessage
from orchestrator.participants.assignment import (
    AssignmentReport,
    Overflow,
    run_assignment,
    set_override,
)
from orchestrator.participants.models import Assignment, AssignmentStatus, Person

CALENDAR_KINDS = ("invitation", "update", "cancellation")

# Where a person sits in a round: a forum id, WAITING, or absent (no row).
WAITING = 0
Places = dict[tuple[uuid.UUID, int], int]


@dataclass(frozen=True)
class Change:
    """One person's change in one round."""

    kind: str  # "moved", "seated" (from the waiting list or nowhere), "waitlisted", "removed"
    person_id: uuid.UUID
    name: str
    email: str
    round: str
    was: str  # forum title; "" when none
    now: str
    was_waiting: bool = False  # on the waiting list before


@dataclass
class Preview:
    """What a balancer run would change, and the mails it would queue (by kind)."""

    changes: list[Change] = field(default_factory=list)
    report: AssignmentReport = field(default_factory=AssignmentReport)
    mails: dict[str, int] = field(default_factory=dict)
    digest: str = ""

    @property
    def calendar_mails(self) -> int:
        return sum(self.mails.get(kind, 0) for kind in CALENDAR_KINDS)

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)


async def _places(session: AsyncSession, conference_id: int) -> Places:
    statement = (
        select(Assignment.person_id, Assignment.session_id, Assignment.forum_id, Assignment.status)
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == conference_id)
    )
    return {
        (person, round_): WAITING if status is AssignmentStatus.WAITLISTED else forum or WAITING
        for person, round_, forum, status in await session.execute(statement)
    }


async def _mail_counts(session: AsyncSession, conference_id: int) -> dict[str, int]:
    statement = (
        select(OutboxMessage.kind, func.count())
        .where(OutboxMessage.conference_id == conference_id)
        .group_by(OutboxMessage.kind)
    )
    return {kind: count for kind, count in await session.execute(statement)}


def _kind(was: int | None, now: int | None) -> str:
    if now is None:
        return "removed"
    if now == WAITING:
        return "waitlisted"
    return "seated" if was in (None, WAITING) else "moved"


async def _changes(
    session: AsyncSession, conference: Conference, before: Places, after: Places
) -> list[Change]:
    differ = sorted(
        key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
    )
    if not differ:
        return []
    ids = list({person for person, _ in differ})
    people = {
        person.id: person
        for person in await session.scalars(select(Person).where(Person.id.in_(ids)))
    }
    forums = {
        forum.id: forum.title
        for forum in await session.scalars(
            select(Forum).where(Forum.conference_id == conference.id)
        )
    }
    rounds = {
        item.id: item.title
        for item in await session.scalars(
            select(ConferenceSession).where(ConferenceSession.conference_id == conference.id)
        )
    }
    changes = []
    for person_id, round_id in differ:
        was, now, person = (
            before.get((person_id, round_id)),
            after.get((person_id, round_id)),
            people[person_id],
        )
        changes.append(
            Change(
                _kind(was, now),
                person_id,
                person.display_name,
                person.email,
                rounds.get(round_id, ""),
                forums.get(was or WAITING, ""),
                forums.get(now or WAITING, ""),
                was == WAITING,
            )
        )
    changes.sort(key=lambda change: (change.round, change.kind, change.name.casefold()))
    return changes


def _digest(before: Places, after: Places) -> str:
    keys = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    text = "|".join(f"{p}:{r}:{before.get((p, r))}>{after.get((p, r))}" for p, r in keys)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


async def preview(
    session: AsyncSession,
    conference: Conference,
    mail: MailContext,
    now: datetime,
    *,
    overflow: Overflow,
) -> Preview:
    """What a run would change and send, computed in a SAVEPOINT that is rolled back."""
    await session.flush()
    before, sent = await _places(session, conference.id), await _mail_counts(session, conference.id)
    async with session.begin_nested() as nested:
        report = await run_assignment(session, conference, overflow=overflow)
        await after_change(session, conference, mail, now)
        after, queued = (
            await _places(session, conference.id),
            await _mail_counts(session, conference.id),
        )
        await nested.rollback()
    mails = {kind: count - sent.get(kind, 0) for kind, count in queued.items()}
    result = Preview(
        await _changes(session, conference, before, after),
        report,
        {kind: count for kind, count in mails.items() if count > 0},
        _digest(before, after),
    )
    return result


async def apply(
    session: AsyncSession,
    conference: Conference,
    mail: MailContext,
    now: datetime,
    *,
    overflow: Overflow,
    digest: str,
) -> Preview:
    """Run the balancer and its follow-ups if they still do what the preview `digest` showed."""
    # The lock first, outside the preview's SAVEPOINT (whose rollback may let it go).
    lock = select(Conference.id).where(Conference.id == conference.id).with_for_update()
    await session.execute(lock)
    expected = await preview(session, conference, mail, now, overflow=overflow)
    if expected.digest != digest:
        raise ConflictError(
            "Seit der Vorschau hat sich etwas geändert. Bitte prüfen Sie die neue Vorschau.",
            details={"reason": "stale"},
        )
    await run_assignment(session, conference, overflow=overflow)
    await after_change(session, conference, mail, now)
    return expected


class PersonUnknownError(NotFoundError):
    """No person of this conference has that email or id."""


@dataclass(frozen=True)
class Placed:
    """An organiser's placement: whom, where ("" for the waiting list), mails queued."""

    person_id: uuid.UUID
    forum: str
    mails: int


async def _person(session: AsyncSession, conference: Conference, who: str) -> Person:
    who = who.strip()
    try:
        statement = select(Person).where(Person.id == uuid.UUID(who))
    except ValueError:
        statement = select(Person).where(Person.email == who.lower())
    person = await session.scalar(statement.where(Person.conference_id == conference.id))
    if person is None:
        raise PersonUnknownError(f"Keine Person mit {who[:80]!r} in dieser Konferenz.")
    return person


async def place_person(
    session: AsyncSession,
    conference: Conference,
    mail: MailContext,
    now: datetime,
    who: str,
    forum_key: str | None,
    *,
    force: bool = False,
) -> Placed:
    """Place, move or promote a person (email or id) into a forum, or onto the waiting
    list (None); the balancer keeps it. Calendar mails and notices follow."""
    person = await _person(session, conference, who)
    row = await set_override(session, conference, person.id, forum_key, force=force)
    mails = await after_change(session, conference, mail, now, person_ids=[person.id])
    forum = await session.get(Forum, row.forum_id) if row.forum_id is not None else None
    return Placed(person.id, forum.title if forum else "", mails)
