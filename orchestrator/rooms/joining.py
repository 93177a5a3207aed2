"""Entering a room by a personal join link: who, which room, whether now, and why not.

Built only on the room rules in `rooms.service` (window, state, may_enter, template_for,
is_moderator). Under a burst, concurrent clicks share their lookups (`JoinLookup`), and the
clicks are telemetry, buffered and written in batches (`ClickRecorder`): a clean stop writes
them all, a kill -9 loses at most the clicks of the last half second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from orchestrator.conferences.models import Conference, ConferenceSession, Forum, SessionStatus
from orchestrator.db import transaction
from orchestrator.participants.models import Person, new_personal_token
from orchestrator.rooms.models import JoinClick, JoinOutcome, Room, RoomKind, RoomState
from orchestrator.rooms.service import (
    Window,
    assigned_forum_ids,
    is_moderator,
    may_enter,
    state,
    template_for,
    window,
)
from orchestrator.rooms.templates import RoomTemplate

log = logging.getLogger(__name__)

# The shape of what new_personal_token() and new_room_name() produce (a public fact):
# anything else is refused before the database is asked.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,64}")
ROOM_SHAPE = re.compile(r"[a-z0-9-]{1,80}")
# Compared against when no row matched, so an unknown token costs the same compare.
_DECOY = new_personal_token().encode()


class Refusal(StrEnum):
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 (a reason, not a secret)
    UNKNOWN_ROOM = "unknown_room"
    NOT_ALLOWED = "not_allowed"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    CLOSED = "closed"
    CANCELLED = "cancelled"  # the room's session was cancelled


_OUTCOMES = {
    Refusal.NOT_ALLOWED: JoinOutcome.NOT_ALLOWED,
    Refusal.TOO_EARLY: JoinOutcome.TOO_EARLY,
    Refusal.TOO_LATE: JoinOutcome.TOO_LATE,
    Refusal.CLOSED: JoinOutcome.CLOSED,
    Refusal.CANCELLED: JoinOutcome.CLOSED,  # the click record keeps its outcomes
}


@dataclass(frozen=True)
class JoinDecision:
    """Let the person in (template, window, moderator) or say why not."""

    person: Person | None
    room: Room | None
    refusal: Refusal | None = None
    template: RoomTemplate | None = None
    window: Window | None = None
    moderator: bool = False

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def outcome(self) -> JoinOutcome | None:
        """What the click record says; None when there is no person and room to record."""
        if self.person is None or self.room is None:
            return None
        return JoinOutcome.REDIRECTED if self.refusal is None else _OUTCOMES[self.refusal]


def _tokens_match(stored: str | None, given: str) -> bool:
    expected = stored.encode() if stored is not None else _DECOY
    return hmac.compare_digest(expected, given.encode()) and stored is not None


Found = tuple[Person | None, Room | None]


class JoinLookup:
    """Finds people by token and rooms by name, concurrent requests sharing one batch.

    Each click is answered from rows read after it arrived, but the clicks that arrive while
    a batch is being read go together into the next one (the DataLoader pattern): a burst
    costs one pair of indexed queries per batch instead of per click.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_batch: int = 500) -> None:
        self.sessions, self.max_batch = sessions, max_batch
        self._queue: list[tuple[str, str, asyncio.Future[Found]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def find(self, token: str, name: str) -> Found:
        """The holder of `token` (checked in constant time) and the room called `name`."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None, None
        future: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        self._queue.append((token, name if ROOM_SHAPE.fullmatch(name) else "", future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        person, room = await future
        return (person if _tokens_match(person.token if person else None, token) else None), room

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._answer(batch)
        finally:
            self._drainer = None

    async def _answer(self, batch: list[tuple[str, str, asyncio.Future[Found]]]) -> None:
        try:
            people, rooms = await self._load({t for t, _, _ in batch}, {n for _, n, _ in batch})
        except Exception as error:  # every waiting click learns of it; the drain goes on
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for token, name, future in batch:
            if not future.done():  # a click whose client went away is cancelled
                future.set_result((people.get(token), rooms.get(name)))

    async def _load(
        self, tokens: set[str], names: set[str]
    ) -> tuple[dict[str, Person], dict[str, Room]]:
        named = names - {""}
        async with self.sessions() as session:
            people = select(Person).where(Person.token.in_(tokens))
            found = await session.execute(people.options(joinedload(Person.assignments)))
            by_token = {person.token: person for person in found.unique().scalars()}
            by_name: dict[str, Room] = {}
            if named:
                rooms = select(Room).where(Room.name.in_(named)).options(joinedload(Room.session))
                by_name = {room.name: room for room in await session.scalars(rooms)}
        return by_token, by_name


def _refusal(room: Room, current: RoomState, span: Window | None, now: datetime) -> Refusal | None:
    if room.session is not None and room.session.status is SessionStatus.CANCELLED:
        return Refusal.CANCELLED
    if current is RoomState.OPEN:
        return None
    if current is RoomState.SCHEDULED:
        return Refusal.TOO_EARLY
    stopped_by_hand = room.manual_state in (RoomState.CLOSED, RoomState.ENDED)
    cancelled = room.session is None or room.session.status is SessionStatus.CANCELLED
    if not stopped_by_hand and not cancelled and span is not None and now >= span.closes_at:
        return Refusal.TOO_LATE
    return Refusal.CLOSED


def decide_join(
    person: Person | None,
    room: Room | None,
    templates: dict[str, RoomTemplate],
    now: datetime,
) -> JoinDecision:
    """Whether `person` may enter `room` now, as what, and until when."""
    if person is None:
        return JoinDecision(None, None, Refusal.UNKNOWN_TOKEN)
    if room is None or room.conference_id != person.conference_id:
        return JoinDecision(person, None, Refusal.UNKNOWN_ROOM)
    if not may_enter(person, room):
        return JoinDecision(person, room, Refusal.NOT_ALLOWED)
    template = template_for(person, room, templates)
    span = window(room, room.session, template) if room.session is not None else None
    refusal = _refusal(room, state(room, room.session, template, now), span, now)
    moderator = refusal is None and is_moderator(person, room, template)
    return JoinDecision(person, room, refusal, template, span, moderator)


async def resolve_join(
    lookup: JoinLookup,
    token: str,
    room_name: str,
    templates: dict[str, RoomTemplate],
    now: datetime,
) -> JoinDecision:
    """Look up the token's holder and the room (batched with concurrent clicks), decide."""
    person, room = await lookup.find(token, room_name.lower())
    return decide_join(person, room, templates, now)


def token_validity(decision: JoinDecision, now: datetime) -> tuple[datetime, datetime]:
    """The Jitsi token's nbf and exp: the room's window (earlier if a moderator opened it)."""
    if decision.window is None:
        raise ValueError("only an allowed join has a token window")
    return min(decision.window.opens_at, now), decision.window.closes_at


@dataclass(frozen=True)
class RefusalContext:
    """What the refusal page shows beyond the reason: names, times, the next step."""

    timezone: str = "Europe/Berlin"
    conference_title: str = ""
    organiser: str = ""
    organiser_email: str = ""
    room_title: str = ""
    own_forum_title: str = ""
    own_room: str | None = None  # the room name of the person's own forum, if any


def _room_title(room: Room | None, forum: Forum | None) -> str:
    if room is None:
        return ""
    if room.kind is RoomKind.FORUM and forum is not None:
        return forum.title
    return room.session.title if room.session is not None else ""


async def _own_forum(session: AsyncSession, person: Person) -> tuple[str, str | None]:
    forum_ids = assigned_forum_ids(person)
    if not forum_ids:
        return "", None
    statement = (
        select(Forum.title, Room.name)
        .join(Room, Room.forum_id == Forum.id)
        .outerjoin(ConferenceSession, ConferenceSession.id == Forum.session_id)
        .where(Forum.id.in_(forum_ids))
        .order_by(ConferenceSession.starts_at, Forum.position)
    )
    row = (await session.execute(statement)).first()
    return (row[0], row[1]) if row is not None else ("", None)


async def refusal_context(session: AsyncSession, decision: JoinDecision) -> RefusalContext:
    """Load what the page for a refused join needs (off the fast path)."""
    person, room = decision.person, decision.room
    if person is None:
        return RefusalContext()
    conference = await session.get(Conference, person.conference_id)
    forum = await session.get(Forum, room.forum_id) if room and room.forum_id else None
    own_title, own_room = "", None
    if decision.refusal is Refusal.NOT_ALLOWED:
        own_title, own_room = await _own_forum(session, person)
    return RefusalContext(
        timezone=conference.timezone if conference else "Europe/Berlin",
        conference_title=conference.title if conference else "",
        organiser=conference.organiser if conference else "",
        organiser_email=conference.organiser_email if conference else "",
        room_title=_room_title(room, forum),
        own_forum_title=own_title,
        own_room=own_room,
    )


def click_row(decision: JoinDecision, now: datetime) -> dict[str, Any] | None:
    """The JoinClick row for a decision; None for an unknown token or room."""
    outcome = decision.outcome
    if outcome is None or decision.person is None or decision.room is None:
        return None
    return {
        "person_id": decision.person.id,
        "room_id": decision.room.id,
        "clicked_at": now,
        "outcome": outcome,
        "moderator": decision.moderator,
    }


class ClickRecorder:
    """Buffers join clicks in memory and writes them in batches from a background task."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = 0.5,
        batch: int = 1000,
        limit: int = 100_000,
    ) -> None:
        self.sessions = sessions
        self.interval, self.batch, self.limit = interval, batch, limit
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._running = False

    async def record(self, decision: JoinDecision, now: datetime) -> None:
        """Queue the click of a decision; written at once when no background task runs."""
        row = click_row(decision, now)
        if row is None:
            return
        self._pending.append(row)
        if not self._running:
            await self.flush()
        elif len(self._pending) >= self.batch:
            self._wake.set()

    async def flush(self) -> int:
        """Write what is queued in one INSERT; on a database outage keep it for the next try."""
        rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            await self._insert(rows)
        except IntegrityError:  # a person or room deleted since the click
            rows = await self._still_known(rows)
            await self._insert(rows)
        except (SQLAlchemyError, OSError) as error:
            self._requeue(rows, error)
            return 0
        return len(rows)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            async with transaction(self.sessions) as session:
                await session.execute(insert(JoinClick), rows)

    async def _still_known(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        person_ids = {row["person_id"] for row in rows}
        room_ids = {row["room_id"] for row in rows}
        async with self.sessions() as session:
            people = set(await session.scalars(select(Person.id).where(Person.id.in_(person_ids))))
            rooms = set(await session.scalars(select(Room.id).where(Room.id.in_(room_ids))))
        kept = [row for row in rows if row["person_id"] in people and row["room_id"] in rooms]
        log.info("rooms.join_clicks_orphaned", extra={"dropped": len(rows) - len(kept)})
        return kept

    def _requeue(self, rows: list[dict[str, Any]], error: BaseException) -> None:
        self._pending[:0] = rows
        overflow = len(self._pending) - self.limit
        if overflow > 0:
            del self._pending[:overflow]
        extra = {"queued": len(self._pending), "dropped": max(overflow, 0), "error": str(error)}
        log.warning("rooms.join_clicks_flush_failed", extra=extra)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep the loop alive; the next round tries again
                log.exception("rooms.join_clicks_flush_crashed")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ClickRecorder]:
        """Flush in the background while inside; write everything left on the way out."""
        self._stopping, self._running = False, True
        task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._stopping, self._running = True, False
            self._wake.set()
            await task
            await self.flush()
