"""Folding stored events into presence intervals in the database.

`fold_pending` claims unprocessed events, finds the (room, occupant) pairs they touch and
recomputes each pair's intervals with `presence.fold` from the stored events of every visit
a new event can change (`presence.refold_since`: stays that ended a rejoin gap before the
earliest new visit are settled and kept), so a late, repeated or reordered event yields the
same intervals as folding all events at once. Occupant ids that are our people become
person_id; any other presence is kept anonymous. Breakout events carry the main room's name
and land in that room with via_breakout. `fold_all` folds everything pending.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from orchestrator.attendance.models import JitsiEvent, PresenceInterval
from orchestrator.attendance.presence import (
    ROOM_DESTROYED,
    DestroyedByKey,
    Payload,
    Stay,
    fold,
    occupant_key,
    refold_since,
)
from orchestrator.clock import Clock
from orchestrator.conferences.models import Conference, ConferenceSession
from orchestrator.db import transaction
from orchestrator.participants.models import Person
from orchestrator.rooms.models import Room
from orchestrator.rooms.service import window
from orchestrator.rooms.templates import RoomTemplate

log = logging.getLogger(__name__)

DEFAULT_GAP = timedelta(seconds=120)  # Conference.rejoin_gap_seconds' default
_CHUNK = 500  # bound parameters per IN (...)
_FOLD_LOCK = 0x6F7263682E666F6C  # PostgreSQL advisory lock: one folder at a time
T = TypeVar("T")


@dataclass(frozen=True)
class _Place:
    """The room an event names: ours (with its conference and rules) or unknown."""

    room_id: int | None = None
    conference_id: int | None = None
    gap: timedelta = DEFAULT_GAP
    end: datetime | None = None


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def room_end(room: Room, templates: Mapping[str, RoomTemplate] | None) -> datetime | None:
    """The end of the room's window (its session's end without templates)."""
    if room.session is None:
        return None
    template = (templates or {}).get(room.template)
    if template is not None:
        return window(room, room.session, template).closes_at
    end = room.session.ends_at
    return max(end, room.extended_until) if room.extended_until else end


async def _places(
    session: AsyncSession, names: Iterable[str], templates: Mapping[str, RoomTemplate] | None
) -> dict[str, _Place]:
    """The rooms the events name: ours with their rules, others unknown."""
    names = set(names)
    statement = (
        select(Room, Conference.rejoin_gap_seconds)
        .join(Conference, Conference.id == Room.conference_id)
        .where(Room.name.in_({name.lower() for name in names}))
        .options(selectinload(Room.session))
    )
    ours = {
        room.name: _Place(
            room.id, room.conference_id, timedelta(seconds=gap), room_end(room, templates)
        )
        for room, gap in await session.execute(statement)
    }
    return {name: ours.get(name.lower(), _Place()) for name in names}


async def _exclusive(session: AsyncSession, *, wait: bool = False) -> bool:
    """On PostgreSQL one folder at a time (SQLite serialises writers itself); with `wait`,
    until a fold under way has committed, else False at once if one is under way."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_FOLD_LOCK))
        return True
    statement = text("SELECT pg_try_advisory_xact_lock(:key)").bindparams(key=_FOLD_LOCK)
    return bool(await session.scalar(statement))


Pair = tuple[str, str]  # room name, occupant key
Touched = dict[Pair, int | None]  # earliest new visit (epoch seconds); None: no new visit


async def _claim(session: AsyncSession, limit: int) -> list[tuple[str, str, str | None, Any]]:
    """Mark the oldest unprocessed events processed (a write first: SQLite locks up front)."""
    pending = (
        select(JitsiEvent.id)
        .where(JitsiEvent.processed.is_(False))
        .order_by(JitsiEvent.id)
        .limit(limit)
    )
    statement = (
        update(JitsiEvent)
        .where(JitsiEvent.id.in_(pending))
        .values(processed=True)
        .returning(
            JitsiEvent.event_name, JitsiEvent.room_name, JitsiEvent.occupant_id, JitsiEvent.payload
        )
        .execution_options(synchronize_session=False)
    )
    return [(row[0], row[1], row[2], row[3]) for row in await session.execute(statement)]


def _touch(touched: Touched, pair: Pair, joined: int | None) -> None:
    earlier = touched.get(pair)
    if joined is None:
        touched.setdefault(pair, None)
    else:
        touched[pair] = joined if earlier is None else min(earlier, joined)


def _affected(claimed: Iterable[tuple[str, str, str | None, Any]]) -> Touched:
    """The (room, occupant) pairs the events name, with their earliest new visit."""
    touched: Touched = {}
    for event_name, room_name, occupant_id, payload in claimed:
        if occupant_id is not None:
            _touch(touched, (room_name, occupant_id), int(payload["occupant"]["joined_at"]))
        elif event_name == ROOM_DESTROYED:
            listed = payload.get("all_occupants")
            for item in listed if isinstance(listed, list) else []:
                _touch(touched, (room_name, occupant_key(item)), int(item["joined_at"]))
    return touched


async def _open_pairs(
    session: AsyncSession,
    destroyed: set[str],
    now: datetime,
    templates: Mapping[str, RoomTemplate] | None,
) -> set[Pair]:
    """Open intervals a room/destroyed may close, or whose room's end has passed."""
    statement = (
        select(PresenceInterval.room_name, PresenceInterval.occupant_key)
        .add_columns(PresenceInterval.joined_at, Room)
        .outerjoin(Room, Room.id == PresenceInterval.room_id)
        .outerjoin(ConferenceSession, ConferenceSession.id == Room.session_id)
        .where(
            PresenceInterval.left_at.is_(None),
            # a room's window never ends before its session does
            or_(PresenceInterval.room_name.in_(destroyed), ConferenceSession.ends_at <= now),
        )
        .options(selectinload(Room.session))
    )
    pairs: set[Pair] = set()
    for room_name, key, joined_at, room in await session.execute(statement):
        end = None if room is None else room_end(room, templates)
        if room_name in destroyed or (end is not None and joined_at < end <= now):
            pairs.add((room_name, key))
    return pairs


async def _people(session: AsyncSession, keys: Iterable[str]) -> dict[str, tuple[uuid.UUID, int]]:
    """Keys that are our people's ids, with the person's conference."""
    ids: dict[uuid.UUID, str] = {}
    for key in keys:
        with suppress(ValueError):
            if str(parsed := uuid.UUID(key)) == key.lower():
                ids[parsed] = key
    found: dict[str, tuple[uuid.UUID, int]] = {}
    for chunk in _chunks(list(ids)):
        statement = select(Person.id, Person.conference_id).where(Person.id.in_(chunk))
        for person_id, conference_id in await session.execute(statement):
            found[ids[person_id]] = (person_id, conference_id)
    return found


async def _destroyed(session: AsyncSession, rooms: Iterable[str]) -> dict[str, DestroyedByKey]:
    """Every room/destroyed of these rooms, ready to hand out per occupant key."""
    payloads: dict[str, list[Payload]] = {room: [] for room in rooms}
    statement = select(JitsiEvent.room_name, JitsiEvent.payload).where(
        JitsiEvent.room_name.in_(list(payloads)), JitsiEvent.event_name == ROOM_DESTROYED
    )
    for room_name, payload in await session.execute(statement):
        payloads[room_name].append(payload)
    return {room: DestroyedByKey(items) for room, items in payloads.items()}


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


async def _since(
    session: AsyncSession, touched: Touched, places: Mapping[str, _Place]
) -> dict[Pair, int]:
    """Per touched pair, from when to fold again (see presence.refold_since)."""
    gaps = {room: int(place.gap.total_seconds()) for room, place in places.items()}
    statement = select(
        PresenceInterval.room_name,
        PresenceInterval.occupant_key,
        PresenceInterval.joined_at,
        PresenceInterval.left_at,
    ).where(*_pairs_in(PresenceInterval.room_name, PresenceInterval.occupant_key, touched))
    if None not in touched.values():  # the stays settled for every pair are not needed
        earliest = min(first for first in touched.values() if first is not None)
        threshold = datetime.fromtimestamp(earliest - max(gaps.values()), UTC)
        statement = statement.where(
            or_(PresenceInterval.left_at.is_(None), PresenceInterval.left_at > threshold)
        )
    stays: dict[Pair, list[tuple[int, int | None]]] = defaultdict(list)
    for room_name, key, joined_at, left_at in await session.execute(statement):
        if (room_name, key) in touched:
            stays[room_name, key].append((int(joined_at.timestamp()), _epoch(left_at)))
    since = {
        pair: refold_since(stays[pair], first, gaps[pair[0]]) for pair, first in touched.items()
    }
    return {pair: start for pair, start in since.items() if start is not None}


async def _events(session: AsyncSession, since: Mapping[Pair, int]) -> dict[Pair, list[Payload]]:
    """The occupant events of these pairs from the earliest `since` on."""
    statement = select(JitsiEvent.room_name, JitsiEvent.occupant_id, JitsiEvent.payload).where(
        *_pairs_in(JitsiEvent.room_name, JitsiEvent.occupant_id, since),
        JitsiEvent.occurred_at >= datetime.fromtimestamp(min(since.values()), UTC),
    )
    own: dict[Pair, list[Payload]] = defaultdict(list)
    for room_name, key, payload in await session.execute(statement):
        if (room_name, key) in since:
            own[room_name, key].append(payload)
    return own


def _pairs_in(
    room: InstrumentedAttribute[str], key: InstrumentedAttribute[Any], pairs: Iterable[Pair]
) -> list[ColumnElement[bool]]:
    """room IN (...) AND key IN (...): a superset of the pairs that indexes on room serve
    (SQLite scans the whole table for a row-value IN); callers keep only the pairs."""
    rooms, keys = {pair[0] for pair in pairs}, {pair[1] for pair in pairs}
    return [room.in_(rooms), key.in_(keys)]


_INTERVALS = cast(Table, PresenceInterval.__table__)
# A pair's stays from a moment on, for many pairs in one executemany.
_TAIL = delete(_INTERVALS).where(
    _INTERVALS.c.room_name == bindparam("room"),
    _INTERVALS.c.occupant_key == bindparam("key"),
    _INTERVALS.c.joined_at >= bindparam("since"),
)


async def _refold(
    session: AsyncSession,
    touched: Touched,
    now: datetime,
    templates: Mapping[str, RoomTemplate] | None,
) -> int:
    """Replace the touched pairs' stays from the first one new events can change on."""
    places = await _places(session, {room for room, _ in touched}, templates)
    destroyed = await _destroyed(session, places)
    people = await _people(session, {key for _, key in touched})
    rows: list[dict[str, Any]] = []
    tails: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(touched), _CHUNK // 2):  # bound parameters: rooms + keys
        since = await _since(session, {pair: touched[pair] for pair in chunk}, places)
        events = await _events(session, since) if since else {}
        for (room, key), start in since.items():
            place = places[room]
            end = place.end if place.end is not None and place.end <= now else None
            payloads = events.get((room, key), []) + destroyed[room].of(key)
            for stay in fold(key, payloads, place.gap, end, since=start):
                rows.append(_row(room, key, place, people.get(key), stay))
            tails.append({"room": room, "key": key, "since": datetime.fromtimestamp(start, UTC)})
    if tails:
        await (await session.connection()).execute(_TAIL, tails)
    if rows:
        await session.execute(insert(_INTERVALS), rows)
    return len(rows)


def _row(
    room_name: str, key: str, place: _Place, person: tuple[uuid.UUID, int] | None, stay: Stay
) -> dict[str, Any]:
    if person is not None and place.conference_id not in (None, person[1]):
        person = None  # someone of another edition: anonymous here
    return {
        "conference_id": place.conference_id or (person[1] if person else None),
        "room_id": place.room_id,
        "room_name": room_name,
        "person_id": person[0] if person else None,
        "occupant_key": key,
        "display_name": stay.display_name.replace("\x00", "")[:200],  # PostgreSQL text
        "joined_at": stay.joined_at,
        "left_at": stay.left_at,
        "closed_by": stay.closed_by.value if stay.closed_by else None,
        "via_breakout": stay.via_breakout,
    }


async def fold_pending(
    session: AsyncSession,
    now: datetime,
    *,
    templates: Mapping[str, RoomTemplate] | None = None,
    limit: int = 2000,
    wait: bool = False,
) -> int:
    """Fold up to `limit` unprocessed events into intervals; the number of events folded.

    A fold under way elsewhere (PostgreSQL) makes this one return 0 at once, or, with
    `wait`, wait until it has committed and then fold what it left."""
    if not await _exclusive(session, wait=wait):
        return 0
    claimed = await _claim(session, limit)
    touched = _affected(claimed)
    destroyed = {room for name, room, _, _ in claimed if name == ROOM_DESTROYED}
    for pair in await _open_pairs(session, destroyed, now, templates):
        _touch(touched, pair, None)
    written = await _refold(session, touched, now, templates) if touched else 0
    if claimed or touched:
        log.info(
            "attendance.events_folded",
            extra={"events": len(claimed), "pairs": len(touched), "intervals_written": written},
        )
    return len(claimed)


async def fold_all(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    templates: Mapping[str, RoomTemplate] | None = None,
    limit: int = 2000,
    *,
    wait: bool = False,
) -> int:
    """Fold every pending event, `limit` per transaction; the number folded. With `wait`,
    a fold under way elsewhere is waited for instead of left to finish the work."""
    total = 0
    while True:
        async with transaction(sessions) as session:
            folded = await fold_pending(
                session, clock(), templates=templates, limit=limit, wait=wait
            )
        total += folded
        if folded < limit:
            return total
