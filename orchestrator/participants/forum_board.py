"""The forums as the organiser watches them: fill per forum, how seats were won, waiting lists.

Read only. The waiting list of a round is ordered by who has waited longest (the time the
row became a waiting-list row, to the second), and among those put there together by the
balancer's draw (`lottery_key`): position 1 is the person an organiser promotes first.
The same order gives a person their position on their own page and in their mail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, ConferenceSession, SessionKind
from orchestrator.participants.balancing import Candidate, lottery_key
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    ForumChoice,
    Person,
    Role,
)

BALANCED = (Role.PARTICIPANT, Role.MODERATOR, Role.REFERENT)


@dataclass
class ForumLine:
    """One forum: its seats and how the people in them got there."""

    key: str
    title: str
    capacity: int
    seated: int = 0
    first: int = 0  # by their first choice
    second: int = 0  # by their second choice
    other: int = 0  # by a later choice
    unchosen: int = 0  # not a forum they chose: overflow or an organiser's placement

    @property
    def free(self) -> int:
        return max(self.capacity - self.seated, 0)

    @property
    def over(self) -> int:
        return max(self.seated - self.capacity, 0)


@dataclass(frozen=True)
class Waiting:
    """A person on a round's waiting list (`since` in the conference's zone)."""

    position: int
    person_id: uuid.UUID
    name: str
    email: str
    since: datetime
    choices: tuple[str, ...]  # forum titles of the round, first choice first


@dataclass
class RoundBoard:
    """A breakout round: its forums, its waiting list and who chose nothing."""

    id: int
    title: str
    starts_at: datetime
    forums: list[ForumLine] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    no_choice: int = 0  # balanced people without a choice in this round and without a row

    def total(self, name: str) -> int:
        return sum(int(getattr(line, name)) for line in self.forums)


def _rounds(conference: Conference) -> list[ConferenceSession]:
    return sorted(
        (item for item in conference.sessions if item.kind is SessionKind.BREAKOUT_ROUND),
        key=lambda item: (item.starts_at, item.id),
    )


def waiting_order(
    salt: str, rows: list[tuple[Assignment, Person]]
) -> list[tuple[Assignment, Person]]:
    """Longest waiting first; the balancer's draw among those put on the list together."""

    def key(pair: tuple[Assignment, Person]) -> tuple[datetime, tuple[str, str, str]]:
        row, person = pair
        draw = lottery_key(salt, Candidate(person.id, person.email))
        return row.updated_at.replace(microsecond=0), draw

    return sorted(rows, key=key)


async def _waiting_rows(
    session: AsyncSession, conference_id: int, round_id: int | None = None
) -> dict[int, list[tuple[Assignment, Person]]]:
    statement = (
        select(Assignment, Person)
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == conference_id)
        .where(Assignment.status == AssignmentStatus.WAITLISTED)
    )
    if round_id is not None:
        statement = statement.where(Assignment.session_id == round_id)
    rows: dict[int, list[tuple[Assignment, Person]]] = {}
    for row, person in await session.execute(statement):
        rows.setdefault(row.session_id, []).append((row, person))
    return rows


async def waiting_positions(
    session: AsyncSession, conference: Conference, round_id: int | None = None
) -> dict[tuple[uuid.UUID, int], int]:
    """Each waiting person's position, by (person id, round id); 1 is next in line."""
    positions: dict[tuple[uuid.UUID, int], int] = {}
    for round_, rows in (await _waiting_rows(session, conference.id, round_id)).items():
        for position, (_, person) in enumerate(waiting_order(conference.slug, rows), start=1):
            positions[(person.id, round_)] = position
    return positions


async def _choices(session: AsyncSession, conference_id: int) -> dict[uuid.UUID, list[int]]:
    statement = (
        select(ForumChoice.person_id, ForumChoice.forum_id)
        .join(Person, Person.id == ForumChoice.person_id)
        .where(Person.conference_id == conference_id, Person.role.in_(BALANCED))
        .order_by(ForumChoice.person_id, ForumChoice.rank)
    )
    chosen: dict[uuid.UUID, list[int]] = {}
    for person_id, forum_id in await session.execute(statement):
        chosen.setdefault(person_id, []).append(forum_id)
    return chosen


async def board(session: AsyncSession, conference: Conference) -> list[RoundBoard]:
    """Every breakout round with its forums' fill, seat origins and waiting list."""
    rounds = _rounds(conference)
    forums = {forum.id: forum for forum in conference.forums}
    seated = (
        select(Assignment.forum_id, Assignment.choice_rank)
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == conference.id)
        .where(Assignment.status == AssignmentStatus.ASSIGNED)
    )
    lines = {
        forum.id: ForumLine(forum.key, forum.title, forum.capacity)
        for forum in sorted(conference.forums, key=lambda forum: (forum.position, forum.id))
    }
    for forum_id, rank in await session.execute(seated):
        line = lines.get(forum_id) if forum_id is not None else None
        if line is None:
            continue
        line.seated += 1
        name = {1: "first", 2: "second"}.get(rank or 0, "other" if rank else "unchosen")
        setattr(line, name, getattr(line, name) + 1)
    chosen = await _choices(session, conference.id)
    people = select(Person.id).where(Person.conference_id == conference.id)
    everyone = list(await session.scalars(people.where(Person.role.in_(BALANCED))))
    with_row = select(Assignment.person_id, Assignment.session_id).join(Person)
    rows = set(
        (person, round_)
        for person, round_ in await session.execute(
            with_row.where(Person.conference_id == conference.id)
        )
    )
    waiting = await _waiting_rows(session, conference.id)
    boards, zone = [], ZoneInfo(conference.timezone)
    for item in rounds:
        mine = [line for forum_id, line in lines.items() if forums[forum_id].session_id == item.id]
        ids = {forum.id for forum in conference.forums if forum.session_id == item.id}
        titles = {forum_id: forums[forum_id].title for forum_id in ids}
        ordered = waiting_order(conference.slug, waiting.get(item.id, []))
        queue = [
            Waiting(
                position,
                person.id,
                person.display_name,
                person.email,
                row.updated_at.astimezone(zone),
                tuple(titles[f] for f in chosen.get(person.id, []) if f in ids),
            )
            for position, (row, person) in enumerate(ordered, start=1)
        ]
        silent = sum(
            1
            for person_id in everyone
            if (person_id, item.id) not in rows and not ids & set(chosen.get(person_id, []))
        )
        start = item.starts_at.astimezone(zone)
        boards.append(RoundBoard(item.id, item.title, start, mine, queue, silent))
    return boards
