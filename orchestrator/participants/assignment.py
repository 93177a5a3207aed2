"""Forum assignment (SPEC §4.2): the balancer's run over the database, and overrides.

The balancing itself is pure and lives in `participants.balancing`; its names stay
importable from here.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from orchestrator.conferences.models import Conference, ConferenceSession, Forum, SessionKind
from orchestrator.conferences.repository import forum_fill
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.participants.balancing import (
    Candidate,
    Outcome,
    Overflow,
    Placement,
    Seats,
    balance,
    lottery_key,
)
from orchestrator.participants.models import (
    PINNED_SOURCES,
    Assignment,
    AssignmentSource,
    AssignmentStatus,
    ForumChoice,
    Person,
    Role,
)

__all__ = [
    "BALANCED_ROLES",
    "STAFF_ROLES",
    "AssignmentReport",
    "Candidate",
    "ForumFill",
    "Outcome",
    "Overflow",
    "Placement",
    "Seats",
    "balance",
    "clear_override",
    "lottery_key",
    "run_assignment",
    "set_override",
]

log = logging.getLogger(__name__)

BALANCED_ROLES = (Role.PARTICIPANT, Role.MODERATOR, Role.REFERENT)
STAFF_ROLES = frozenset({Role.MODERATOR, Role.REFERENT})


@dataclass(frozen=True)
class ForumFill:
    key: str
    capacity: int
    assigned: int


@dataclass
class AssignmentReport:
    """What a balancing run did; `total` counts each person once per breakout round."""

    total: int = 0
    first_choice: int = 0
    second_choice: int = 0
    other_choice: int = 0
    overflow: int = 0
    waitlisted: int = 0
    no_choice: int = 0
    kept: int = 0
    forums: list[ForumFill] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def count(self, placement: Placement, stored_rank: int | None) -> None:
        self.total += 1
        name = placement.outcome.value
        if placement.outcome is Outcome.CHOICE:
            name = {1: "first_choice", 2: "second_choice"}.get(stored_rank or 0, "other_choice")
        setattr(self, name, getattr(self, name) + 1)


Pair = tuple[uuid.UUID, int]  # (person id, breakout round id) or (person id, forum id)


async def _lock(session: AsyncSession, conference_id: int) -> None:
    """Flush pending work, then serialise assignment changes per conference (PostgreSQL)."""
    await session.flush()
    statement = select(Conference.id).where(Conference.id == conference_id).with_for_update()
    await session.execute(statement)


async def _rounds(session: AsyncSession, conference_id: int) -> dict[int, list[Forum]]:
    statement = (
        select(ConferenceSession.id, Forum)
        .join(Forum, Forum.session_id == ConferenceSession.id)
        .where(ConferenceSession.conference_id == conference_id)
        .where(ConferenceSession.kind == SessionKind.BREAKOUT_ROUND)
        .order_by(ConferenceSession.starts_at, ConferenceSession.id, Forum.position, Forum.id)
    )
    rounds: dict[int, list[Forum]] = {}
    for round_id, forum in await session.execute(statement):
        rounds.setdefault(round_id, []).append(forum)
    return rounds


async def _candidates(
    session: AsyncSession, conference_id: int
) -> tuple[list[Candidate], dict[Pair, int]]:
    """Everyone to balance with all their choices in rank order; the rank per (person, forum)."""
    people = (
        select(Person.id, Person.email, Person.role)
        .where(Person.conference_id == conference_id, Person.role.in_(BALANCED_ROLES))
        .order_by(Person.id)
    )
    choices = (
        select(ForumChoice.person_id, ForumChoice.forum_id, ForumChoice.rank)
        .join(Person, Person.id == ForumChoice.person_id)
        .where(Person.conference_id == conference_id)
        .order_by(ForumChoice.person_id, ForumChoice.rank)
    )
    ranks = {(person, forum): rank for person, forum, rank in await session.execute(choices)}
    wishes: dict[uuid.UUID, list[int]] = {}
    for person_id, forum_id in ranks:  # the dict keeps the query's rank order
        wishes.setdefault(person_id, []).append(forum_id)
    candidates = [
        Candidate(id_, email, tuple(wishes.get(id_, ())), role in STAFF_ROLES)
        for id_, email, role in await session.execute(people)
    ]
    return candidates, ranks


async def _rows(session: AsyncSession, conference_id: int) -> dict[Pair, Assignment]:
    statement = (
        select(Assignment)
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == conference_id)
        .execution_options(populate_existing=True)  # decide on the rows as stored, not cached
    )
    return {(row.person_id, row.session_id): row for row in await session.scalars(statement)}


@dataclass
class _Run:
    """One balancing run: the rows and ranks loaded, the rows to add, the report."""

    session: AsyncSession
    salt: str
    overflow: Overflow
    rows: dict[Pair, Assignment]  # by (person id, round id)
    ranks: dict[Pair, int]  # by (person id, forum id)
    touched: set[int] = field(default_factory=set)
    new: list[dict[str, Any]] = field(default_factory=list)  # rows to bulk-insert
    report: AssignmentReport = field(default_factory=AssignmentReport)

    def pinned(self, round_id: int) -> dict[uuid.UUID, int | None]:
        return {
            person_id: row.forum_id if row.status == AssignmentStatus.ASSIGNED else None
            for (person_id, session_id), row in self.rows.items()
            if session_id == round_id and row.source in PINNED_SOURCES
        }

    def balance_round(self, round_id: int, forums: list[Forum], people: list[Candidate]) -> None:
        ids = {forum.id for forum in forums}
        in_round = [replace(c, choices=tuple(f for f in c.choices if f in ids)) for c in people]
        seats = [Seats(forum.id, forum.capacity) for forum in forums]
        pinned = self.pinned(round_id)
        placed = balance(seats, in_round, salt=self.salt, pinned=pinned, overflow=self.overflow)
        for person in people:
            placement = placed[person.person_id]
            rank = self.ranks.get((person.person_id, placement.forum_id or 0), placement.rank)
            self.report.count(placement, rank)
            if placement.outcome not in (Outcome.KEPT, Outcome.NO_CHOICE):
                self.write((person.person_id, round_id), placement.forum_id, rank)

    def write(self, key: Pair, forum_id: int | None, rank: int | None) -> None:
        status = AssignmentStatus.WAITLISTED if forum_id is None else AssignmentStatus.ASSIGNED
        row = self.rows.get(key)
        if row is None:
            self.new.append(
                {
                    "person_id": key[0],
                    "session_id": key[1],
                    "forum_id": forum_id,
                    "status": status,
                    "source": AssignmentSource.BALANCER,
                    "choice_rank": rank,
                }
            )
            return
        self.touched.add(row.id)
        # Unchanged: no UPDATE. Changed: all three columns, so the flush is one executemany.
        if (row.forum_id, row.status, row.choice_rank) != (forum_id, status, rank):
            row.forum_id, row.status, row.choice_rank = forum_id, status, rank
            for name in ("forum_id", "status", "choice_rank"):
                flag_modified(row, name)

    async def finish(self) -> None:
        for row in self.rows.values():
            if row.source == AssignmentSource.BALANCER and row.id not in self.touched:
                await self.session.delete(row)
        await self.session.flush()
        if self.new:  # one executemany (ORM objects would cost an INSERT each on SQLite)
            statement = insert(Assignment).execution_options(render_nulls=True)
            await self.session.execute(statement, self.new)


async def run_assignment(
    session: AsyncSession, conference: Conference, *, overflow: Overflow = "most_room"
) -> AssignmentReport:
    """Balance every breakout round of the conference; pinned rows stay, the caller commits."""
    await _lock(session, conference.id)
    rounds = await _rounds(session, conference.id)
    people, ranks = await _candidates(session, conference.id)
    run = _Run(session, conference.slug, overflow, await _rows(session, conference.id), ranks)
    for round_id, forums in rounds.items():
        run.balance_round(round_id, forums, people)
    await run.finish()
    fill = await forum_fill(session, conference.id)
    run.report.forums = [
        ForumFill(forum.key, forum.capacity, fill.get(forum.id, 0))
        for forums in rounds.values()
        for forum in forums
    ]
    summary = {key: value for key, value in run.report.as_dict().items() if key != "forums"}
    log.info("participants.assigned", extra={"conference": conference.slug, **summary})
    return run.report


async def _require_person(session: AsyncSession, conference_id: int, person: uuid.UUID) -> None:
    statement = select(Person.id).where(Person.conference_id == conference_id)
    if await session.scalar(statement.where(Person.id == person)) is None:
        raise NotFoundError("Person nicht gefunden.")


async def _target(
    session: AsyncSession, conference: Conference, key: str | None
) -> tuple[Forum | None, int]:
    """The forum (None: the waiting list of the first breakout round) and its round."""
    rounds = await _rounds(session, conference.id)
    if key is None and rounds:
        return None, next(iter(rounds))
    for round_id, forums in rounds.items():
        for forum in forums:
            if forum.key == key:
                return forum, round_id
    if key is None:
        raise ConflictError(f"{conference.slug!r} hat keine Forenrunde mit Foren.")
    raise NotFoundError(f"Forum {key!r} gibt es in keiner Forenrunde von {conference.slug!r}.")


async def _ensure_room(
    session: AsyncSession, conference: Conference, forum: Forum, row: Assignment | None
) -> None:
    mine = row is not None and row.forum_id == forum.id and row.status == AssignmentStatus.ASSIGNED
    taken = (await forum_fill(session, conference.id)).get(forum.id, 0) - int(mine)
    if taken >= forum.capacity:
        raise ConflictError(
            f"Forum „{forum.title}“ ist voll ({taken} von {forum.capacity} Plätzen belegt).",
            details={"forum": forum.key, "taken": taken, "capacity": forum.capacity},
        )


async def _choice_rank(session: AsyncSession, person_id: uuid.UUID, forum_id: int) -> int | None:
    statement = select(ForumChoice.rank).where(ForumChoice.person_id == person_id)
    return await session.scalar(statement.where(ForumChoice.forum_id == forum_id))


async def _row(session: AsyncSession, person_id: uuid.UUID, round_id: int) -> Assignment | None:
    statement = select(Assignment).where(Assignment.person_id == person_id)
    return await session.scalar(statement.where(Assignment.session_id == round_id))


async def set_override(
    session: AsyncSession,
    conference: Conference,
    person_id: uuid.UUID,
    forum_key: str | None,
    *,
    force: bool = False,
    source: AssignmentSource = AssignmentSource.OVERRIDE,
) -> Assignment:
    """Put a person into a forum (None: onto the waiting list); the balancer keeps it.

    `source` says who decided: an organiser (override) or the person (self_service).
    """
    await _lock(session, conference.id)
    await _require_person(session, conference.id, person_id)
    forum, round_id = await _target(session, conference, forum_key)
    row = await _row(session, person_id, round_id)
    if forum is not None and not force:
        await _ensure_room(session, conference, forum, row)
    if row is None:
        row = Assignment(person_id=person_id, session_id=round_id)
        session.add(row)
    row.source = source
    row.status = AssignmentStatus.WAITLISTED if forum is None else AssignmentStatus.ASSIGNED
    row.forum_id = None if forum is None else forum.id
    row.choice_rank = None if forum is None else await _choice_rank(session, person_id, forum.id)
    await session.flush()
    extra = {
        "conference": conference.slug,
        "forum": forum_key,
        "forced": force,
        "source": source.value,
    }
    log.info("participants.placed", extra=extra)
    return row


async def clear_override(
    session: AsyncSession, conference: Conference, person_id: uuid.UUID
) -> None:
    """Hand the person back to the balancer: their override rows go, the next run places them."""
    await _lock(session, conference.id)
    await _require_person(session, conference.id, person_id)
    statement = select(Assignment).where(Assignment.person_id == person_id)
    overrides = statement.where(Assignment.source == AssignmentSource.OVERRIDE)
    for row in await session.scalars(overrides):
        await session.delete(row)
    await session.flush()
    log.info("participants.override_cleared", extra={"conference": conference.slug})
