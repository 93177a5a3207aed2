"""The reminder plan (SPEC §4.6): which reminders each person should get, and when.

Rows are derived data: `plan_for` says what a person should get, `replan` brings the stored
rows in line (adds, moves, cancels planned rows) and leaves queued and skipped rows alone as
history. Nobody gets anything who declined (RSVP is per person for the whole conference),
who withdrew consent (consent False with consent_at set: the moment of withdrawal) or who is
a room system; invitees who never answered (consent_at None) do get reminders, as some ask
for exactly that answer. The kinds:

- BEFORE_SESSION at each conference offset before each session the person attends (the
  plenaries not cancelled, each round in which they hold a seat: as invitations count);
- STARTING_NOW at the start of each such session, for people who attend online;
- RSVP_NEEDED `RSVP_DAYS` days before the first session, while the RSVP is open;
- CHOOSE_FORUM `CHOOSE_FORUM_DAYS` days before each round in which a participant, moderator
  or referent has neither a seat nor a waiting-list place (organisers need none);
- THANK_YOU and, for people who accepted, NO_SHOW after the last session ends.

The date part of an offset (years, months, weeks, days) counts calendar days on the
conference's wall clock: P1D before 09:30 is 09:30 the day before, across a change of summer
time too (23 or 25 hours). The time part (hours, minutes, seconds) is an exact span. A wall
time that does not exist (spring) keeps the UTC offset before the change, an hour later on
the clock; an ambiguous one (autumn) means its first occurrence. Rows store UTC.

Deadlines (past them a due row is skipped as "zu spät"): BEFORE_SESSION until the next,
shorter reminder for the session is due, so a worker back from downtime sends one, not all
(at the latest the start); STARTING_NOW until `STARTING_NOW_GRACE` after the start;
RSVP_NEEDED and CHOOSE_FORUM until the first session or the round starts; THANK_YOU and
NO_SHOW `AFTER_GRACE` after they are due.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import Row, Table, Update, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import (
    Conference,
    ConferenceMode,
    ConferenceSession,
    SessionKind,
    SessionStatus,
)
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    AttendanceMode,
    Person,
    Role,
    Rsvp,
)
from orchestrator.scheduling.models import Reminder, ReminderKind, ReminderState

log = logging.getLogger(__name__)

RSVP_DAYS = 3
CHOOSE_FORUM_DAYS = 5
STARTING_NOW_GRACE = timedelta(minutes=10)
THANK_YOU_AFTER = timedelta(hours=2)
NO_SHOW_AFTER = timedelta(days=1)
AFTER_GRACE = timedelta(days=14)
FORUM_ROLES = frozenset({Role.PARTICIPANT, Role.MODERATOR, Role.REFERENT})  # the balanced ones
NOT_WANTED = "nicht mehr vorgesehen"
_DURATION = TypeAdapter(timedelta)

Seats = Mapping[int, int | None]  # round id -> forum id of the person's seat; None: waitlisted
_Stored = Row[tuple[str, int, uuid.UUID, ReminderState, datetime]]  # key, id, person, state, due


@dataclass(frozen=True)
class Offset:
    """An ISO 8601 duration split into calendar days and an exact span."""

    days: int
    exact: timedelta


@dataclass(frozen=True)
class PlannedReminder:
    """One reminder a person should get: when it is due, and until when it is any use."""

    kind: ReminderKind
    session_id: int | None
    offset: str | None
    due_at: datetime
    deadline: datetime
    dedup_key: str


@dataclass
class ReplanReport:
    """What a replan changed."""

    planned: int = 0  # rows added, or cancelled ones planned again
    moved: int = 0  # planned rows with a new due time
    cancelled: int = 0  # planned rows no longer wanted


@lru_cache(maxsize=256)
def parse_offset(value: str) -> Offset:
    """'P1DT2H' -> 1 calendar day and 2 exact hours (raises ValueError if not a duration)."""
    date_part, _, time_part = value.strip().upper().partition("T")
    calendar = _DURATION.validate_python(date_part) if date_part != "P" else timedelta()
    exact = _DURATION.validate_python(f"PT{time_part}") if time_part else timedelta()
    if calendar < timedelta() or exact < timedelta():
        raise ValueError(f"negative reminder offset {value!r}")
    return Offset(calendar.days, exact + (calendar - timedelta(days=calendar.days)))


@lru_cache(maxsize=4096)  # the same few sessions and offsets for thousands of people
def before(moment: datetime, offset: Offset, zone: ZoneInfo) -> datetime:
    """`moment` minus the offset: calendar days on the zone's wall clock, then the exact span."""
    wall = moment.astimezone(zone).replace(tzinfo=None) - timedelta(days=offset.days)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC) - offset.exact


def dedup_key(
    kind: ReminderKind, person_id: uuid.UUID, session_id: int | None, offset: str | None
) -> str:
    """kind:person:session:offset, '-' for a part that does not apply."""
    return f"{kind.value}:{person_id}:{'-' if session_id is None else session_id}:{offset or '-'}"


def exclusion(person: Person) -> str | None:
    """Why the person gets no reminders at all, or None."""
    if person.role is Role.ROOM_SYSTEM:
        return "Raumsystem"
    if person.rsvp is Rsvp.DECLINED:
        return "abgesagt"
    if not person.consent and person.consent_at is not None:  # never asked: consent_at None
        return "Einwilligung widerrufen"
    return None


def attendance_mode(conference: Conference, person: Person) -> AttendanceMode:
    """An online or in-person-only conference decides; a hybrid one leaves it to the person."""
    if conference.mode is ConferenceMode.HYBRID:
        return person.attendance_mode
    online = conference.mode is ConferenceMode.ONLINE
    return AttendanceMode.ONLINE if online else AttendanceMode.IN_PERSON


def scheduled(conference: Conference) -> list[ConferenceSession]:
    """The sessions not cancelled, in programme order."""
    items = [item for item in conference.sessions if item.status is SessionStatus.SCHEDULED]
    return sorted(items, key=lambda item: (item.starts_at, item.id))


def attended_sessions(items: Iterable[ConferenceSession], seats: Seats) -> list[ConferenceSession]:
    """Of `scheduled` sessions: plenaries, and each round in which the person holds a seat."""
    return [
        item for item in items if item.kind is SessionKind.PLENARY or seats.get(item.id) is not None
    ]


def _planned(
    kind: ReminderKind,
    person: Person,
    item: ConferenceSession | None,
    due_at: datetime,
    deadline: datetime,
    offset: str | None = None,
) -> PlannedReminder:
    session_id = item.id if item is not None else None
    key = dedup_key(kind, person.id, session_id, offset)
    return PlannedReminder(kind, session_id, offset, due_at, deadline, key)


@lru_cache(maxsize=1024)  # the same for everyone attending the session
def _offset_times(
    start: datetime, offsets: tuple[str, ...], zone: ZoneInfo
) -> tuple[tuple[str, datetime, datetime], ...]:
    """(offset, due, deadline) each: useful until the next, shorter one is due (or the start)."""
    dues = {offset: before(start, parse_offset(offset), zone) for offset in offsets}
    deadlines = {due: min([d for d in dues.values() if d > due] + [start]) for due in dues.values()}
    return tuple((offset, due, deadlines[due]) for offset, due in dues.items())


def _sessions_plan(
    conference: Conference, person: Person, items: list[ConferenceSession], seats: Seats
) -> list[PlannedReminder]:
    zone, online = ZoneInfo(conference.timezone), attendance_mode(conference, person)
    offsets = tuple(dict.fromkeys(conference.reminder_offsets))
    plan: list[PlannedReminder] = []
    for item in attended_sessions(items, seats):
        for offset, due, deadline in _offset_times(item.starts_at, offsets, zone):
            plan.append(_planned(ReminderKind.BEFORE_SESSION, person, item, due, deadline, offset))
        if online is AttendanceMode.ONLINE:
            deadline = item.starts_at + STARTING_NOW_GRACE
            plan.append(_planned(ReminderKind.STARTING_NOW, person, item, item.starts_at, deadline))
    return plan


def _answers_plan(
    conference: Conference, person: Person, items: list[ConferenceSession], seats: Seats
) -> list[PlannedReminder]:
    """'Please answer' before the first session, 'please choose a forum' before each round."""
    zone, plan = ZoneInfo(conference.timezone), []
    if person.rsvp is Rsvp.NEEDS_ACTION and items:
        first = items[0].starts_at
        due = before(first, Offset(RSVP_DAYS, timedelta()), zone)
        plan.append(_planned(ReminderKind.RSVP_NEEDED, person, None, due, first))
    if person.role not in FORUM_ROLES:
        return plan
    with_forums = {forum.session_id for forum in conference.forums}
    rounds = [item for item in items if item.kind is SessionKind.BREAKOUT_ROUND]
    for item in rounds:
        if item.id in with_forums and item.id not in seats:
            due = before(item.starts_at, Offset(CHOOSE_FORUM_DAYS, timedelta()), zone)
            plan.append(_planned(ReminderKind.CHOOSE_FORUM, person, item, due, item.starts_at))
    return plan


def _after_plan(person: Person, items: list[ConferenceSession]) -> list[PlannedReminder]:
    """Thank-you to everyone still coming; the no-show follow-up to those who accepted."""
    if not items:
        return []
    end = max(item.ends_at for item in items)
    thanks = end + THANK_YOU_AFTER
    plan = [_planned(ReminderKind.THANK_YOU, person, None, thanks, thanks + AFTER_GRACE)]
    if person.rsvp is Rsvp.ACCEPTED:
        missed = end + NO_SHOW_AFTER
        plan.append(_planned(ReminderKind.NO_SHOW, person, None, missed, missed + AFTER_GRACE))
    return plan


def plan_for(conference: Conference, person: Person, seats: Seats) -> list[PlannedReminder]:
    """Every reminder the person should get, past ones too (the caller looks at the clock)."""
    if exclusion(person) is not None:
        return []
    items = scheduled(conference)
    plan = [
        *_sessions_plan(conference, person, items, seats),
        *_answers_plan(conference, person, items, seats),
        *_after_plan(person, items),
    ]
    return list({item.dedup_key: item for item in plan}.values())


# --- the rows ------------------------------------------------------------------------


def _only(statement: Any, column: Any, ids: Collection[uuid.UUID] | None) -> Any:
    """Restrict a statement to the given people (None: everyone)."""
    return statement if ids is None else statement.where(column.in_(list(ids)))


async def load_people(
    session: AsyncSession, conference_id: int, person_ids: Collection[uuid.UUID] | None = None
) -> list[Person]:
    """The conference's people (all, or the given ones)."""
    statement = select(Person).where(Person.conference_id == conference_id)
    return list(await session.scalars(_only(statement, Person.id, person_ids)))


async def load_seats(
    session: AsyncSession, conference_id: int, person_ids: Collection[uuid.UUID] | None = None
) -> dict[uuid.UUID, dict[int, int | None]]:
    """Per person: round id -> forum id of their seat, None when on the waiting list."""
    statement = (
        select(Assignment.person_id, Assignment.session_id, Assignment.forum_id, Assignment.status)
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == conference_id)
    )
    seats: dict[uuid.UUID, dict[int, int | None]] = {}
    for person_id, round_id, forum_id, status in await session.execute(
        _only(statement, Assignment.person_id, person_ids)
    ):
        assigned = status == AssignmentStatus.ASSIGNED and forum_id is not None
        seats.setdefault(person_id, {})[round_id] = forum_id if assigned else None
    return seats


async def _stored(
    session: AsyncSession, conference_id: int, person_ids: Collection[uuid.UUID] | None
) -> dict[str, _Stored]:
    """The conference's reminder rows by dedup key (columns only: there may be 60,000)."""
    statement = select(
        Reminder.dedup_key, Reminder.id, Reminder.person_id, Reminder.state, Reminder.due_at
    ).where(Reminder.conference_id == conference_id)
    rows = await session.execute(_only(statement, Reminder.person_id, person_ids))
    return {row.dedup_key: row for row in rows}


@dataclass
class _Changes:
    """Rows to insert and parameter sets for the three bulk UPDATEs."""

    new: list[dict[str, Any]]
    moves: list[dict[str, Any]]
    revivals: list[dict[str, Any]]
    cancels: list[dict[str, Any]]


def _diff(
    conference_id: int,
    wanted: dict[str, tuple[Person, PlannedReminder]],
    stored: dict[str, _Stored],
    reasons: dict[uuid.UUID, str],
    now: datetime,
) -> _Changes:
    """Compare the plan with the rows: only planned (or cancelled) rows ever change."""
    changes = _Changes([], [], [], [])
    for key, (person, item) in wanted.items():
        row = stored.get(key)
        if row is None and item.due_at > now:
            changes.new.append(_new_row(conference_id, person.id, item, now))
        elif row is None:
            continue
        elif row.state is ReminderState.PLANNED and row.due_at != item.due_at:
            changes.moves.append({"row": row.id, "due": item.due_at})
        elif row.state is ReminderState.CANCELLED and item.due_at > now:
            changes.revivals.append({"row": row.id, "due": item.due_at})
    for key, row in stored.items():
        if row.state is ReminderState.PLANNED and key not in wanted:
            note = reasons.get(row.person_id, NOT_WANTED)
            changes.cancels.append({"row": row.id, "note": note, "at": now})
    return changes


def _new_row(
    conference_id: int, person_id: uuid.UUID, item: PlannedReminder, now: datetime
) -> dict[str, Any]:
    row = {"conference_id": conference_id, "person_id": person_id, "created_at": now}
    row |= {"session_id": item.session_id, "kind": item.kind, "offset": item.offset}
    row |= {"dedup_key": item.dedup_key, "due_at": item.due_at, "note": "", "handled_at": None}
    return row | {"state": ReminderState.PLANNED}


_TABLE = cast(Table, Reminder.__table__)
_ROW, _PLANNED = _TABLE.c.id == bindparam("row"), _TABLE.c.state == ReminderState.PLANNED
_MOVE = update(_TABLE).where(_ROW, _PLANNED).values(due_at=bindparam("due"))
_REVIVE = (
    update(_TABLE)
    .where(_ROW, _TABLE.c.state == ReminderState.CANCELLED)
    .values(due_at=bindparam("due"), state=ReminderState.PLANNED, note="", handled_at=None)
)
_CANCEL = (
    update(_TABLE)
    .where(_ROW, _PLANNED)
    .values(state=ReminderState.CANCELLED, note=bindparam("note"), handled_at=bindparam("at"))
)


async def _write(session: AsyncSession, changes: _Changes) -> None:
    """One executemany per kind of change; rows queued meanwhile are left alone."""
    if changes.new:
        await session.execute(insert(Reminder).execution_options(render_nulls=True), changes.new)
    updates: list[tuple[Update, list[dict[str, Any]]]] = [
        (_MOVE, changes.moves),
        (_REVIVE, changes.revivals),
        (_CANCEL, changes.cancels),
    ]
    for statement, params in updates:
        if params:
            await session.execute(statement, params)


async def replan(
    session: AsyncSession,
    conference: Conference,
    now: datetime,
    person_ids: Collection[uuid.UUID] | None = None,
) -> ReplanReport:
    """Add rows still to come, move or cancel planned ones, for everyone or the given people.

    Cancelled rows wanted again are planned again; queued and skipped rows stay as history.
    Needs conference.sessions and .forums loaded. Bulk statements; the caller commits.
    """
    await session.flush()
    # Serialise replans per conference (PostgreSQL; SQLite serialises writers anyway).
    lock = select(Conference.id).where(Conference.id == conference.id).with_for_update()
    await session.execute(lock)
    people = await load_people(session, conference.id, person_ids)
    seats = await load_seats(session, conference.id, person_ids)
    wanted = {
        item.dedup_key: (person, item)
        for person in people
        for item in plan_for(conference, person, seats.get(person.id, {}))
    }
    reasons = {p.id: why for p in people if (why := exclusion(p)) is not None}
    stored = await _stored(session, conference.id, person_ids)
    changes = _diff(conference.id, wanted, stored, reasons, now)
    await _write(session, changes)
    report = ReplanReport(
        planned=len(changes.new) + len(changes.revivals),
        moved=len(changes.moves),
        cancelled=len(changes.cancels),
    )
    log.info("reminders.replanned", extra={"conference": conference.slug, **asdict(report)})
    return report
