"""Forum assignment (SPEC §4.2): the pure balancer, its run over the database, overrides."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from orchestrator.conferences.models import Conference, ConferenceSession, Forum, SessionKind
from orchestrator.conferences.repository import forum_fill
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.participants.models import (
    PINNED_SOURCES,
    Assignment,
    AssignmentSource,
    AssignmentStatus,
    ForumChoice,
    Person,
    Role,
)

log = logging.getLogger(__name__)

Overflow = Literal["most_room", "waitlist"]
BALANCED_ROLES = (Role.PARTICIPANT, Role.MODERATOR, Role.REFERENT)
STAFF_ROLES = frozenset({Role.MODERATOR, Role.REFERENT})


class Outcome(StrEnum):
    """How a person was placed; except CHOICE, the values name the report's counters."""

    CHOICE = "choice"  # one of the person's choices; Placement.rank says which
    OVERFLOW = "overflow"  # no choice had room: the forum with the most free seats
    WAITLISTED = "waitlisted"
    NO_CHOICE = "no_choice"  # chose nothing: left unassigned, a reminder asks them
    KEPT = "kept"  # pinned (organiser override or self-service): kept as it is


@dataclass(frozen=True)
class Seats:  # a forum as the balancer sees it; `balance` takes them in position order
    id: int
    capacity: int


@dataclass(frozen=True)
class Candidate:
    person_id: uuid.UUID
    tiebreak: str  # the email: the draw must not depend on database ids or input order
    choices: tuple[int, ...] = ()  # forum ids, first choice first
    is_staff: bool = False  # moderators and referents run their forum


@dataclass(frozen=True)
class Placement:
    outcome: Outcome
    forum_id: int | None = None
    rank: int | None = None  # 1-based position in Candidate.choices


def lottery_key(salt: str, candidate: Candidate) -> tuple[str, str, str]:
    """The reproducible draw: sha256 of "conference-slug:email", then email, then id."""
    digest = hashlib.sha256(f"{salt}:{candidate.tiebreak}".encode()).hexdigest()
    return digest, candidate.tiebreak, str(candidate.person_id)


class _Board:
    """Free seats per forum (in position order) and the placements made so far."""

    def __init__(self, forums: Sequence[Seats], pinned: Mapping[uuid.UUID, int | None]) -> None:
        self.free = {forum.id: forum.capacity for forum in forums}
        self.placed = {person: Placement(Outcome.KEPT, forum) for person, forum in pinned.items()}
        for forum_id in pinned.values():
            if forum_id in self.free:
                self.free[forum_id] -= 1  # may go below zero: an organiser overbooked

    def waiting(self, queue: Iterable[Candidate]) -> list[Candidate]:
        return [candidate for candidate in queue if candidate.person_id not in self.placed]

    def try_choice(self, candidate: Candidate, rank: int) -> None:
        forum_id = candidate.choices[rank - 1]
        if self.free.get(forum_id, 0) > 0:
            self.seat(candidate, Placement(Outcome.CHOICE, forum_id, rank))

    def seat(self, candidate: Candidate, placement: Placement) -> None:
        if placement.forum_id is not None:
            self.free[placement.forum_id] -= 1
        self.placed[candidate.person_id] = placement

    def most_room(self) -> int | None:
        # max() keeps the first of equals, so ties go to the earlier forum position.
        forum_id = max(self.free, key=self.free.__getitem__, default=None)
        return forum_id if forum_id is not None and self.free[forum_id] > 0 else None


def _overflow_round(board: _Board, queue: list[Candidate], overflow: Overflow) -> None:
    for candidate in board.waiting(queue):
        if not candidate.choices:
            board.seat(candidate, Placement(Outcome.NO_CHOICE))
            continue
        forum_id = board.most_room() if overflow == "most_room" else None
        if forum_id is None:
            board.seat(candidate, Placement(Outcome.WAITLISTED))
        else:
            board.seat(candidate, Placement(Outcome.OVERFLOW, forum_id))


def balance(
    forums: Sequence[Seats],
    candidates: Iterable[Candidate],
    *,
    salt: str,
    pinned: Mapping[uuid.UUID, int | None] | None = None,
    overflow: Overflow = "most_room",
) -> dict[uuid.UUID, Placement]:
    """Pinned kept, then staff, all 1st choices, 2nd, ..., overflow; one Placement each."""
    board = _Board(forums, pinned or {})
    queue = sorted(candidates, key=lambda candidate: lottery_key(salt, candidate))
    for candidate in board.waiting(queue):
        if candidate.is_staff and candidate.choices:
            board.try_choice(candidate, 1)
    for rank in range(1, max((len(c.choices) for c in queue), default=0) + 1):
        for candidate in board.waiting(queue):
            if len(candidate.choices) >= rank:
                board.try_choice(candidate, rank)
    _overflow_round(board, queue, overflow)
    return board.placed


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
