"""A conference's attendance table: every person at every session, reconciled in bulk.

Five queries whatever the size (people, assignments, check-ins, overrides, intervals), then
one pass over the intervals and one `reconcile` per person and session: linear in events.
Rows: every plenary for everyone (room systems aside), the breakout round for the people
with a forum in it, and any session where someone turned up, checked in or was overridden.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, String, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.models import CheckIn, PresenceInterval
from orchestrator.attendance.overrides import Decision, decisions
from orchestrator.attendance.reconcile import Record, Rules, Stay, Visit, Window, reconcile
from orchestrator.collector import collector_paused
from orchestrator.conferences.models import (
    Conference,
    ConferenceSession,
    Forum,
    SessionKind,
    SessionStatus,
)
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    AttendanceMode,
    Person,
    Role,
)

# (person number, session id): people are numbered while loading, because int keys hash
# far faster than UUIDs in the hot loop over 100,000 intervals.
Key = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Row:
    """One person at one session, for lists, the API and the exports."""

    person_id: uuid.UUID
    name: str
    organisation: str
    mode: AttendanceMode
    session_key: str
    session_title: str
    session_kind: SessionKind
    forum_key: str | None
    forum_title: str | None
    expected: bool  # a plenary, or the round of the person's forum
    record: Record  # times in the conference's time zone


class _Person(NamedTuple):
    id: uuid.UUID
    name: str
    organisation: str
    mode: AttendanceMode
    sort_key: tuple[str, str, str]


@dataclass
class _Inputs:
    """Everything the table needs, loaded in bulk."""

    people: list[_Person]  # by person number
    numbers: dict[uuid.UUID, int]
    forums: dict[Key, int]  # assigned forum per person and round
    person_forum: dict[int, int]  # a forum of the person's, for plenary rows
    visits: dict[Key, Visit]
    decisions: dict[Key, list[Decision]]
    stays: defaultdict[Key, list[Stay]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    longest: dict[Key, tuple[timedelta, int]] = dataclasses.field(default_factory=dict)


async def _people(session: AsyncSession, conference_id: int) -> list[_Person]:
    statement = select(
        Person.id,
        Person.first_name,
        Person.last_name,
        Person.email,
        Person.organisation,
        Person.attendance_mode,
    ).where(Person.conference_id == conference_id, Person.role != Role.ROOM_SYSTEM)
    return [
        _Person(
            id_,
            f"{first} {last}".strip() or email,
            organisation,
            mode,
            (last.casefold(), first.casefold(), email),
        )
        for id_, first, last, email, organisation, mode in await session.execute(statement)
    ]


async def _assigned(
    session: AsyncSession, conference_id: int, numbers: dict[uuid.UUID, int]
) -> dict[Key, int]:
    statement = (
        select(Assignment.person_id, Assignment.session_id, Assignment.forum_id)
        .join(Person, Person.id == Assignment.person_id)
        .where(
            Person.conference_id == conference_id,
            Assignment.status == AssignmentStatus.ASSIGNED,
            Assignment.forum_id.is_not(None),
        )
    )
    return {
        (numbers[person_id], session_id): forum_id
        for person_id, session_id, forum_id in await session.execute(statement)
        if forum_id is not None and person_id in numbers
    }


async def _visits(
    session: AsyncSession, session_ids: list[int], numbers: dict[uuid.UUID, int]
) -> dict[Key, Visit]:
    statement = select(
        CheckIn.person_id, CheckIn.session_id, CheckIn.arrived_at, CheckIn.left_at
    ).where(CheckIn.session_id.in_(session_ids))
    return {
        (numbers[person_id], session_id): Visit(arrived_at, left_at)
        for person_id, session_id, arrived_at, left_at in await session.execute(statement)
        if person_id in numbers
    }


async def _load(session: AsyncSession, conference: Conference, session_ids: list[int]) -> _Inputs:
    people = await _people(session, conference.id)
    numbers = {person.id: number for number, person in enumerate(people)}
    forums = await _assigned(session, conference.id, numbers)
    found = await decisions(session, session_ids)
    return _Inputs(
        people=people,
        numbers=numbers,
        forums=forums,
        person_forum={number: forum_id for (number, _), forum_id in forums.items()},
        visits=await _visits(session, session_ids, numbers),
        decisions={
            (numbers[person_id], session_id): items
            for (person_id, session_id), items in found.items()
            if person_id in numbers
        },
    )


def _intervals(conference: Conference) -> Select[str, int | None, str, datetime, datetime | None]:
    return select(
        # The driver's id as is: made our person number once per person, not per row.
        type_coerce(PresenceInterval.person_id, String),
        PresenceInterval.room_id,
        PresenceInterval.room_name,
        PresenceInterval.joined_at,
        PresenceInterval.left_at,
    ).where(
        or_(
            PresenceInterval.conference_id == conference.id,
            PresenceInterval.room_id.in_([room.id for room in conference.rooms]),
        ),
        PresenceInterval.person_id.is_not(None),
    )


async def _stays(
    session: AsyncSession, conference: Conference, now: datetime, inputs: _Inputs
) -> None:
    """Group the conference's intervals by person and session in one pass."""
    # (session id, forum id) per room id and room name as plain data: this loop is hot.
    by_id: dict[int | None, tuple[int | None, int | None]] = {
        room.id: (room.session_id, room.forum_id) for room in conference.rooms
    }
    by_name = {room.name: (room.session_id, room.forum_id) for room in conference.rooms}
    numbers: dict[object, int] = {}  # -1: not one of the table's people (e.g. a room system)
    # Core execution: plain rows without the ORM's result layer, for the one big query.
    rows = await (await session.connection()).execute(_intervals(conference))
    for raw_id, room_id, room_name, joined_at, left_at in rows:
        number = numbers.get(raw_id)
        if number is None:
            number = numbers[raw_id] = inputs.numbers.get(uuid.UUID(str(raw_id)), -1)
        session_id, forum_id = by_id.get(room_id) or by_name.get(room_name) or (None, None)
        if session_id is None or number < 0:
            continue
        key = (number, session_id)
        inputs.stays[key].append((joined_at, left_at))
        if forum_id is not None and key not in inputs.forums:  # where the unassigned were
            length = (left_at or now) - joined_at
            if key not in inputs.longest or length > inputs.longest[key][0]:
                inputs.longest[key] = (length, forum_id)


def _attendees(item: ConferenceSession, inputs: _Inputs) -> tuple[set[int], list[int]]:
    """Who is expected at the session, and everyone with a row for it, sorted by name."""
    if item.kind is SessionKind.PLENARY:
        expected = set(range(len(inputs.people)))
    else:
        expected = {number for (number, sid) in inputs.forums if sid == item.id}
    seen = {
        number
        for source in (inputs.stays, inputs.visits, inputs.decisions)
        for (number, sid) in source
        if sid == item.id
    }
    everyone = sorted(expected | seen, key=lambda number: inputs.people[number].sort_key)
    return expected, everyone


def _forum_id(number: int, item: ConferenceSession, inputs: _Inputs) -> int | None:
    key = (number, item.id)
    if item.kind is SessionKind.PLENARY:  # the person's forum, for filtering in Excel
        return inputs.person_forum.get(number)
    if key in inputs.forums:
        return inputs.forums[key]
    return inputs.longest[key][1] if key in inputs.longest else None


def _local(record: Record, zone: ZoneInfo) -> Record:
    if record.first_join is None and record.last_leave is None:
        return record
    return dataclasses.replace(
        record,
        first_join=record.first_join.astimezone(zone) if record.first_join else None,
        last_leave=record.last_leave.astimezone(zone) if record.last_leave else None,
    )


def _row(
    inputs: _Inputs,
    number: int,
    item: ConferenceSession,
    forum: Forum | None,
    record: Record,
    expected: bool,
) -> Row:
    person = inputs.people[number]
    return Row(
        person_id=person.id,
        name=person.name,
        organisation=person.organisation,
        mode=person.mode,
        session_key=item.key,
        session_title=item.title,
        session_kind=item.kind,
        forum_key=forum.key if forum else None,
        forum_title=forum.title if forum else None,
        expected=expected,
        record=record,
    )


def _session_rows(
    conference: Conference, item: ConferenceSession, inputs: _Inputs, now: datetime
) -> list[Row]:
    window, rules = Window(item.starts_at, item.ends_at, now), Rules(conference.present_ratio)
    forums, zone = {forum.id: forum for forum in conference.forums}, ZoneInfo(conference.timezone)
    expected, everyone = _attendees(item, inputs)
    rows = []
    for number in everyone:
        key = (number, item.id)
        record = reconcile(
            window,
            inputs.stays.get(key, ()),
            inputs.visits.get(key),
            inputs.decisions.get(key, ()),
            rules,
        )
        forum = forums.get(_forum_id(number, item, inputs) or -1)
        rows.append(_row(inputs, number, item, forum, _local(record, zone), number in expected))
    return rows


async def attendance_table(
    session: AsyncSession, conference: Conference, now: datetime
) -> list[Row]:
    """Every person at every session they were expected at or turned up to, in programme order.

    `conference` needs its sessions, rooms and forums loaded (repository.CONFERENCE_GRAPH);
    an open interval or check-in counts until `now` or the session's end.
    """
    sessions = [item for item in conference.sessions if item.status is SessionStatus.SCHEDULED]
    with collector_paused():
        inputs = await _load(session, conference, [item.id for item in sessions])
        await _stays(session, conference, now, inputs)
        return [row for item in sessions for row in _session_rows(conference, item, inputs, now)]
