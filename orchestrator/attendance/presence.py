"""Presence from event_sync: raw events stored, the pure fold into stays, live occupancy.

A visit is one connection (occupant_jid) in one room from joined_at to left_at. The fold
reads the events of one (room, occupant) pair in any order and repetition and always gives
the same stays. Visits of one person closer than the conference's rejoin gap merge (page
reloads, short drop-outs). A missing left is healed from room/destroyed (its all_occupants,
else its destroyed_at) or, once it has passed, from the room's end. `folding` applies the
fold to the database.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import Insert, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.models import JitsiEvent, PresenceInterval

ROOM_CREATED = "muc-room-created"
ROOM_DESTROYED = "muc-room-destroyed"
OCCUPANT_JOINED = "muc-occupant-joined"
OCCUPANT_LEFT = "muc-occupant-left"
# Within one second: a room exists before anyone joins, and is destroyed after all left.
_KIND_ORDER = {ROOM_CREATED: 0, OCCUPANT_JOINED: 1, OCCUPANT_LEFT: 2, ROOM_DESTROYED: 3}
MAX_KEY = 200  # jitsi_events.occupant_id; longer keys are hashed, never cut

Payload = Mapping[str, Any]


class ClosedBy(StrEnum):
    LEFT = "left"
    ROOM_DESTROYED = "room_destroyed"
    ROOM_END = "room_end"


@dataclass(frozen=True)
class Stay:
    """One interval of presence of one occupant in one room (open while left_at is None)."""

    joined_at: datetime
    left_at: datetime | None
    closed_by: ClosedBy | None
    via_breakout: bool
    display_name: str = ""


def occupant_key(occupant: Payload) -> str:
    """context.user.id, else `jid:<occupant_jid>`; an over-long key becomes a stable hash."""
    user_id = occupant.get("id")
    key = user_id if isinstance(user_id, str) and user_id else f"jid:{occupant['occupant_jid']}"
    if len(key) > MAX_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def occurred(payload: Payload) -> int:
    """When the event happened, in epoch seconds."""
    name = payload["event_name"]
    if name == OCCUPANT_JOINED:
        return int(payload["occupant"]["joined_at"])
    if name == OCCUPANT_LEFT:
        return int(payload["occupant"]["left_at"])
    if name == ROOM_DESTROYED:
        return int(payload["destroyed_at"])
    return int(payload["created_at"])


def _order(payload: Payload) -> tuple[int, int]:
    return occurred(payload), _KIND_ORDER.get(payload["event_name"], 9)


def _track(payload: Payload) -> str:
    """'' for the main room, else the breakout room's id."""
    return str(payload.get("breakout_room_id") or "") if payload.get("is_breakout") else ""


@dataclass
class _Visit:
    track: str
    joined: int
    left: int | None = None
    closed_by: ClosedBy | None = None
    name: str = ""


@dataclass(frozen=True)
class _Life:
    """One life of the room (or of one of its breakouts), from a room/destroyed event."""

    track: str
    created: int
    destroyed: int

    def ends(self, visit: _Visit) -> bool:
        same = self.track in ("", visit.track)  # the main room ends its breakouts too
        return same and self.created <= visit.joined <= self.destroyed


class _Reading:
    """What the events tell about the connections of one occupant key in one room."""

    def __init__(self, key: str, since: int | None = None) -> None:
        self.key = key
        self.since = since
        self.visits: dict[tuple[str, str, int], _Visit] = {}
        self.lives: list[_Life] = []

    def read(self, payload: Payload) -> None:
        name = payload["event_name"]
        if name in (OCCUPANT_JOINED, OCCUPANT_LEFT):
            self._seen(_track(payload), payload["occupant"], ClosedBy.LEFT)
        elif name == ROOM_DESTROYED:
            track = _track(payload)
            self.lives.append(_Life(track, int(payload["created_at"]), occurred(payload)))
            listed = payload.get("all_occupants")
            for item in listed if isinstance(listed, list) else []:
                self._seen(track, item, ClosedBy.ROOM_DESTROYED)

    def _seen(self, track: str, occupant: Payload, closed_by: ClosedBy) -> None:
        if occupant_key(occupant) != self.key:
            return
        joined = int(occupant["joined_at"])
        if self.since is not None and joined < self.since:
            return
        ident = (track, str(occupant["occupant_jid"]), joined)
        visit = self.visits.setdefault(ident, _Visit(track, joined))
        visit.name = str(occupant.get("name") or visit.name)
        left = occupant.get("left_at")
        # An occupant/left is the best witness; all_occupants only stands in for a lost one.
        if left is not None and visit.closed_by is not ClosedBy.LEFT:
            visit.left, visit.closed_by = int(left), closed_by

    def heal(self, room_end: int | None) -> list[_Visit]:
        """Close visits whose left was lost: room destroyed, else the room's end."""
        for visit in self.visits.values():
            if visit.left is not None:
                continue
            ends = [life.destroyed for life in self.lives if life.ends(visit)]
            if ends:
                visit.left, visit.closed_by = min(ends), ClosedBy.ROOM_DESTROYED
            elif room_end is not None and visit.joined < room_end:
                visit.left, visit.closed_by = room_end, ClosedBy.ROOM_END
        return list(self.visits.values())


def _continues(current: _Visit, following: _Visit, gap: int) -> bool:
    return current.left is None or following.joined - current.left < gap


def _combine(current: _Visit, following: _Visit) -> _Visit:
    if current.left is None or following.left is None:
        left, closed_by = None, None
    elif following.left >= current.left:
        left, closed_by = following.left, following.closed_by
    else:
        left, closed_by = current.left, current.closed_by
    return replace(current, left=left, closed_by=closed_by, name=following.name or current.name)


def _merge(visits: Iterable[_Visit], gap: int) -> list[_Visit]:
    merged: list[_Visit] = []
    for visit in sorted(visits, key=lambda v: (v.joined, v.left is None, v.left or 0)):
        if merged and _continues(merged[-1], visit, gap):
            merged[-1] = _combine(merged[-1], visit)
        else:
            merged.append(visit)
    return merged


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def fold(
    key: str,
    payloads: Iterable[Payload],
    gap: timedelta,
    room_end: datetime | None,
    since: int | None = None,
) -> list[Stay]:
    """The stays of occupant `key` in one room, from its events in any order and repetition.

    `room_end` closes visits still open without a room/destroyed; pass it once it has passed.
    Main-room visits and breakout visits merge separately (via_breakout tells them apart).
    `since` leaves out visits that began earlier (see `refold_since`).
    """
    reading = _Reading(key, since)
    for payload in sorted(payloads, key=_order):
        reading.read(payload)
    end = None if room_end is None else int(room_end.timestamp())
    visits = reading.heal(end)
    seconds = int(gap.total_seconds())
    stays = [
        Stay(
            _moment(v.joined),
            None if v.left is None else _moment(v.left),
            v.closed_by,
            bool(v.track),
            v.name,
        )
        for breakout in (False, True)
        for v in _merge((v for v in visits if bool(v.track) is breakout), seconds)
    ]
    return sorted(stays, key=lambda stay: (stay.joined_at, stay.via_breakout))


def refold_since(
    stays: Iterable[tuple[int, int | None]], first_new: int | None, gap: int
) -> int | None:
    """From when the visits of a pair must be folded again; None: nothing to fold.

    `stays` are the stored stays (joined, left), `first_new` is when the earliest new visit
    began (None: no new visit, e.g. a room end to apply). A stored stay is settled when it is
    closed and ended at least `gap` before `first_new`: nothing new can merge into it or
    reopen it. Keeping the stays that began before the answer and folding the visits from it
    on (`fold(since=...)`) gives what folding everything would.
    """
    starts = [] if first_new is None else [first_new]
    for joined, left in stays:
        if left is None or (first_new is not None and left + gap > first_new):
            starts.append(joined)
    return min(starts, default=None)


class DestroyedByKey:
    """Each room/destroyed of a room once per occupant key, with only that key's items."""

    def __init__(self, payloads: Iterable[Payload]) -> None:
        self.shells: list[Payload] = []
        self.listed: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for index, payload in enumerate(payloads):
            self.shells.append({**payload, "all_occupants": []})
            items = payload.get("all_occupants")
            for item in items if isinstance(items, list) else []:
                self.listed[occupant_key(item)].append((index, item))

    def of(self, key: str) -> list[Payload]:
        own: dict[int, list[Any]] = defaultdict(list)
        for index, item in self.listed.get(key, []):
            own[index].append(item)
        return [
            {**shell, "all_occupants": own[index]} if index in own else shell
            for index, shell in enumerate(self.shells)
        ]


# --- raw events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RawEvent:
    """An accepted event_sync payload with the columns it is looked up by."""

    digest: str
    event_name: str
    room_name: str
    occupant_id: str | None  # the occupant key (see occupant_key); None for room events
    occurred_at: datetime
    payload: dict[str, Any]


def _insert_once(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (digest) DO NOTHING: a retried event adds no second row."""
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, JitsiEvent.__table__)
    return build(table).on_conflict_do_nothing(index_elements=["digest"])


async def store_events(
    session: AsyncSession, events: Sequence[RawEvent], received_at: datetime
) -> None:
    """Insert raw events unprocessed; one stored before (same digest) is skipped."""
    rows = [
        {
            "digest": event.digest,
            "event_name": event.event_name,
            "room_name": event.room_name,
            "occupant_id": event.occupant_id,
            "occurred_at": event.occurred_at,
            "payload": event.payload,
            "received_at": received_at,
            "processed": False,
        }
        for event in events
    ]
    await session.execute(_insert_once(session.get_bind().dialect.name), rows)


# --- live occupancy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Occupant:
    """Someone in a room now."""

    occupant_key: str
    person_id: uuid.UUID | None
    display_name: str
    joined_at: datetime
    via_breakout: bool


async def live_occupancy(session: AsyncSession, conference_id: int) -> dict[str, list[Occupant]]:
    """Who is in which of the conference's rooms now (open intervals), by room name."""
    statement = (
        select(PresenceInterval)
        .where(PresenceInterval.conference_id == conference_id, PresenceInterval.left_at.is_(None))
        .order_by(PresenceInterval.room_name, PresenceInterval.joined_at)
    )
    rooms: dict[str, dict[str, Occupant]] = defaultdict(dict)
    for item in await session.scalars(statement):
        rooms[item.room_name].setdefault(
            item.occupant_key,
            Occupant(
                item.occupant_key,
                item.person_id,
                item.display_name,
                item.joined_at,
                item.via_breakout,
            ),
        )
    return {name: list(people.values()) for name, people in rooms.items()}


class RoomCount(Protocol):
    """A room of prosody's census (jitsi.client.RoomCensus fits)."""

    @property
    def name(self) -> str: ...

    @property
    def participants(self) -> int: ...


@dataclass(frozen=True)
class Mismatch:
    room_name: str
    from_events: int
    census: int


async def census_check(session: AsyncSession, census: Iterable[RoomCount]) -> list[Mismatch]:
    """Rooms where people by our events and prosody's census differ (the caller logs them).

    Breakouts live in another MUC and are not in the census. A person with two tabs open is
    one here and two in the census, so a mismatch is a hint to look, not an error.
    """
    statement = (
        select(PresenceInterval.room_name, func.count(PresenceInterval.occupant_key.distinct()))
        .where(PresenceInterval.left_at.is_(None), PresenceInterval.via_breakout.is_(False))
        .group_by(PresenceInterval.room_name)
    )
    ours: dict[str, int] = {name: int(count) for name, count in await session.execute(statement)}
    theirs = {room.name.lower(): room.participants for room in census}
    return [
        Mismatch(name, ours.get(name, 0), theirs.get(name, 0))
        for name in sorted(ours.keys() | theirs.keys())
        if ours.get(name, 0) != theirs.get(name, 0)
    ]
