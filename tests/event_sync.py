"""event_sync as prosody runs it, for tests and benchmarks.

Payloads follow jitsi-contrib `event_sync/mod_event_sync_component.lua`: a `Room` keeps the
module's EventData (every occupant by JID, rewritten on a rejoin with the same JID; the set
of active JIDs) and builds each payload from it; integer epoch seconds; context.user fields
that are nil are left out; an empty all_occupants is `{}` (prosody's util.json). The sender
behaves like the module's `async_http_request`: POST with `Content-Type: application/json`
and the configured headers; a status >= 500 or no answer (code 0) is retried `retries` times
`retry_delay` apart; a 4xx or a timeout drops the event. Below them: scenarios on the sample
conference's day and probes of what the receiver stored.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.folding import fold_all
from orchestrator.attendance.models import JitsiEvent, PresenceInterval
from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.rooms.templates import load_templates

XMPP_DOMAIN = "meet.jitsi"
MUC = f"muc.{XMPP_DOMAIN}"
PATHS = {
    "muc-room-created": "/events/room/created",
    "muc-room-destroyed": "/events/room/destroyed",
    "muc-occupant-joined": "/events/occupant/joined",
    "muc-occupant-left": "/events/occupant/left",
}
Payload = dict[str, Any]
T = TypeVar("T")
DAY = datetime(2027, 3, 18, tzinfo=UTC)  # the sample conference's day
# occupant_key, person_id, joined HH:MM:SS, left HH:MM:SS, closed_by, via_breakout
Interval = tuple[str, str | None, str, str | None, str | None, bool]


def user(
    id: str | None = None,
    name: str | None = None,
    email: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """A JWT context.user; fields left None are absent, as a Lua nil is."""
    fields = {"id": id, "name": name, "email": email, **extra}
    return {key: value for key, value in fields.items() if value is not None}


def new_jid() -> str:
    """An occupant's real JID: new for every connection (page load)."""
    return f"{uuid.uuid4()}@{XMPP_DOMAIN}/{secrets.token_urlsafe(6)}"


@dataclass
class Room:
    """One room's EventData; `breakout_id` makes it a breakout of the room `name`."""

    name: str
    created_at: int
    breakout_id: str | None = None
    occupants: dict[str, Payload] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def _extra(self) -> Payload:
        room_jid = f"{self.name}@{MUC}"
        if self.breakout_id is None:
            return {"is_breakout": False, "room_jid": room_jid, "room_name": self.name}
        return {
            "is_breakout": True,
            "breakout_room_id": self.breakout_id,
            "room_jid": room_jid,
            "room_name": self.name,
        }

    def created(self) -> Payload:
        return {"event_name": "muc-room-created", "created_at": self.created_at, **self._extra()}

    def join(self, jid: str, at: int, context_user: dict[str, str] | None = None) -> Payload:
        occupant: Payload = {"occupant_jid": jid, "joined_at": at}
        occupant.update({k: v for k, v in (context_user or {}).items() if k in _USER_FIELDS})
        self.occupants[jid] = occupant
        self.active.add(jid)
        return {
            "event_name": "muc-occupant-joined",
            "occupant": dict(occupant),
            "active_occupants_count": len(self.active),
            **self._extra(),
        }

    def leave(self, jid: str, at: int, speaker_ms: int | None = None) -> Payload:
        self.active.discard(jid)
        occupant = self.occupants[jid]
        occupant["left_at"] = at
        if speaker_ms is not None:
            occupant["total_dominant_speaker_time"] = speaker_ms
        return {
            "event_name": "muc-occupant-left",
            "occupant": dict(occupant),
            "active_occupants_count": len(self.active),
            **self._extra(),
        }

    def destroyed(self, at: int) -> Payload:
        everyone = [dict(item) for item in self.occupants.values()]
        return {
            "event_name": "muc-room-destroyed",
            "created_at": self.created_at,
            "destroyed_at": at,
            "all_occupants": everyone or {},
            **self._extra(),
        }


_USER_FIELDS = ("name", "id", "email")  # without include_user_info


@dataclass
class Delivery:
    """One event's fate: the last answer's status (None: no answer) and the attempts."""

    payload: Payload
    status: int | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class EventSync:
    """The module's HTTP side: one POST per event, retried like `async_http_request`."""

    def __init__(
        self,
        api_prefix: str,
        secret: str | None,
        *,
        retries: int = 3,
        retry_delay: float = 0.01,
        timeout: float = 20.0,
    ) -> None:
        self.api_prefix = api_prefix.rstrip("/")
        self.retries = retries
        self.retry_delay = retry_delay
        self.headers = {"User-Agent": "Prosody (0.12.4; posix)", "Content-Type": "application/json"}
        if secret is not None:
            self.headers["Authorization"] = f"Bearer {secret}"
        self.timeout = timeout
        self.http = self._client()
        self.acknowledged = 0  # events answered with 2xx so far

    def _client(self) -> httpx.AsyncClient:
        # One connection per client: httpcore's pool bookkeeping with many connections costs
        # more than the server under test (see bench/join_burst.py).
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        # verify=False: plain HTTP on loopback; loading the CA bundle costs 40 ms per client.
        return httpx.AsyncClient(timeout=self.timeout, limits=limits, verify=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    async def post_body(
        self, path: str, body: bytes, http: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        """One POST of any body to `{api_prefix}{path}`, without retries."""
        url = self.api_prefix + path
        return await (http or self.http).post(url, content=body, headers=self.headers)

    async def send(self, payload: Payload, http: httpx.AsyncClient | None = None) -> Delivery:
        """Deliver one event: retried on >= 500 or no answer, dropped on a timeout or 4xx."""
        delivery = Delivery(payload)
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry_delay)
            delivery.attempts += 1
            try:
                response = await self.post_body(PATHS[payload["event_name"]], body, http)
            except httpx.TimeoutException:
                delivery.status = None
                return delivery
            except httpx.TransportError as error:
                delivery.status = None
                delivery.errors.append(type(error).__name__)
                continue
            delivery.status = response.status_code
            if response.status_code < 500:
                self.acknowledged += delivery.acknowledged
                return delivery
        return delivery

    async def send_all(self, payloads: Iterable[Payload], concurrency: int = 1) -> list[Delivery]:
        """Deliver every event, `concurrency` at a time, in the given order of starting."""
        queue = list(payloads)
        results: list[Delivery | None] = [None] * len(queue)
        position = iter(range(len(queue)))

        async def worker() -> None:
            async with self._client() as http:
                for index in position:
                    results[index] = await self.send(queue[index], http)

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        return [item for item in results if item is not None]


async def eventually(
    probe: Callable[[], Awaitable[T]], good: Callable[[T], bool], seconds: float = 5.0
) -> T:
    """Poll `probe` until `good` holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not good(value := await probe()):
        assert time.monotonic() < deadline, f"still {value!r} after {seconds} s"
        await asyncio.sleep(0.02)
    return value


# --- scenarios on the sample conference's day ------------------------------------------------


def at(clock: str) -> int:
    """Epoch seconds of HH:MM:SS (UTC) on the conference day."""
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return int(DAY.replace(hour=hours, minute=minutes, second=seconds).timestamp())


@overload
def epoch(moment: datetime) -> int: ...
@overload
def epoch(moment: None) -> None: ...
def epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def hms(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%H:%M:%S")


def forum_day(room_name: str, ids: list[str]) -> list[Payload]:
    """Three people: 10:00:10-11:20:00, 10:00:20-10:45:30, 10:05:00-11:29:59."""
    room = Room(room_name, at("10:00:00"))
    jids = [new_jid() for _ in ids]
    contexts = [user(pid, f"P{n}", f"p{n}@example.org") for n, pid in enumerate(ids)]
    return [
        room.created(),
        room.join(jids[0], at("10:00:10"), contexts[0]),
        room.join(jids[1], at("10:00:20"), contexts[1]),
        room.join(jids[2], at("10:05:00"), contexts[2]),
        room.leave(jids[1], at("10:45:30")),
        room.leave(jids[0], at("11:20:00")),
        room.leave(jids[2], at("11:29:59")),
        room.destroyed(at("11:29:59")),
    ]


def breakout_day(room_name: str, me: dict[str, str]) -> list[Payload]:
    """A reload, a second tab, then the same connection into a breakout and back."""
    main = Room(room_name, at("10:00:00"))
    breakout = Room(room_name, at("10:20:00"), breakout_id="6f1c2a04-3b51-4c1e-9d7e-0e52f1a4b8c3")
    first, second, tab = new_jid(), new_jid(), new_jid()
    return [
        main.created(),
        main.join(first, at("10:01:00"), me),
        main.leave(first, at("10:05:00")),
        main.join(second, at("10:05:30"), me),
        main.join(tab, at("10:06:00"), me),
        main.leave(tab, at("10:07:00")),
        main.leave(second, at("10:20:00")),
        breakout.created(),
        breakout.join(second, at("10:20:00"), me),
        breakout.leave(second, at("10:50:00")),
        breakout.destroyed(at("10:50:00")),
        main.join(second, at("10:50:01"), me),
        main.leave(second, at("11:25:00")),
        main.destroyed(at("11:25:00")),
    ]


# --- our receiver under test, and what it stored -------------------------------------------------


@dataclass
class Site:
    """The app serving our receiver, the conference it knows and a sender to it."""

    sync: EventSync
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    clock: FrozenClock
    conference_id: int
    plenary: str
    forum: str
    forum_id: int
    people: list[str]

    async def fold(self) -> int:
        """Fold what is pending now, as the background folder would."""
        templates = load_templates(self.settings.room_templates_dir)
        return await fold_all(self.sessions, self.clock, templates)

    async def intervals(self, room: str) -> list[Interval]:
        return await intervals(self.sessions, room)

    async def stored(self) -> int:
        return len(await stored_digests(self.sessions))

    async def send(self, payloads: list[Payload], concurrency: int = 1) -> None:
        deliveries = await self.sync.send_all(payloads, concurrency)
        assert [d.status for d in deliveries] == [200] * len(payloads)


async def stored_digests(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        return set(await session.scalars(select(JitsiEvent.digest)))


async def intervals(sessions: async_sessionmaker[AsyncSession], room: str) -> list[Interval]:
    """The room's presence intervals, to the second, by occupant and time."""
    async with sessions() as session:
        rows = await session.scalars(
            select(PresenceInterval)
            .where(PresenceInterval.room_name == room)
            .order_by(PresenceInterval.occupant_key, PresenceInterval.joined_at)
        )
        return [
            (
                row.occupant_key,
                str(row.person_id) if row.person_id else None,
                hms(row.joined_at) or "",
                hms(row.left_at),
                row.closed_by,
                row.via_breakout,
            )
            for row in rows
        ]
