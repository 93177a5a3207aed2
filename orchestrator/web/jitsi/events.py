"""event_sync webhooks (jitsi-contrib prosody-plugins): stored raw before the answer, then folded.

Each POST is checked against event_sync's format (400 not JSON, 422 wrong shape, nothing
stored) and handed to the `EventWriter`, which inserts whatever has queued up meanwhile in one
transaction (group commit) and answers each request only after the COMMIT: a 200 means the
event is on disk. event_sync's retry of an event (same digest) gets 200 without a second row;
a 503 when the database fails makes event_sync retry. `intake(app)` runs the writer, the
folder and the census cross-check for the app's lifetime, and folds what is left on the way
down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import State

from orchestrator.attendance.folding import fold_all
from orchestrator.attendance.presence import RawEvent, store_events
from orchestrator.clock import Clock
from orchestrator.db import transaction
from orchestrator.errors import DatabaseUnavailableError
from orchestrator.jitsi import events
from orchestrator.jitsi.client import ProsodyClient
from orchestrator.jitsi.events import (
    EventPayload,
    OccupantJoined,
    OccupantLeft,
    RoomCreated,
    RoomDestroyed,
)
from orchestrator.rooms.templates import RoomTemplate
from orchestrator.web.jitsi.census import CensusWatch, check_once

log = logging.getLogger(__name__)
router = APIRouter(prefix="/events", tags=["jitsi"])
_STORED = b'{"status":"stored"}'
NOT_STORED = "Das Ereignis konnte nicht gespeichert werden; bitte erneut senden."


@dataclass(frozen=True)
class _Pending:
    event: RawEvent
    done: asyncio.Future[None]


class EventWriter:
    """Group commit of raw events: one transaction for everything queued meanwhile."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        on_commit: Callable[[], None] | None = None,
        max_batch: int = 500,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="attendance.event_writer")

    async def stop(self) -> None:
        """Write what is queued, then end."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def store(self, event: RawEvent) -> None:
        """Return once the event is committed; DatabaseUnavailableError (503) otherwise."""
        if self._task is None or self._closing:
            raise DatabaseUnavailableError(NOT_STORED)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(event, done))
        await done

    async def _run(self) -> None:
        while (first := await self._queue.get()) is not None:
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    self._queue.put_nowait(None)  # end after this batch
                    break
                batch.append(item)
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            async with transaction(self._sessions) as session:
                await store_events(session, [item.event for item in batch], self._clock())
        except (IntegrityError, DataError) as error:
            if len(batch) == 1:
                self._fail(batch, error)
                return
            for item in batch:  # one bad row must not sink the others: one by one
                await self._write([item])
            return
        except Exception as error:  # the database is gone: every request gets a 503
            self._fail(batch, error)
            return
        for item in batch:
            if not item.done.done():
                item.done.set_result(None)
        if self._on_commit is not None:
            self._on_commit()

    def _fail(self, batch: list[_Pending], error: Exception) -> None:
        log.warning(
            "attendance.event_store_failed",
            extra={"events": len(batch), "error": str(error).splitlines()[0][:300]},
        )
        for item in batch:
            if not item.done.done():
                item.done.set_exception(DatabaseUnavailableError(NOT_STORED))


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """The JSON schema with its local $refs replaced by their definitions (for OpenAPI)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


def _documented(kind: type[EventPayload]) -> dict[str, Any]:
    schema = kind.model_json_schema()
    body = _inline(schema, schema.pop("$defs", {}))
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {"description": "stored (or already stored)"},
            "400": {"description": "not JSON"},
            "401": {"description": "wrong or missing bearer secret"},
            "422": {"description": "not event_sync's format"},
            "503": {"description": "not stored; event_sync retries"},
        },
    }


async def _receive(request: Request, kind: type[EventPayload]) -> Response:
    raw, event, digest = events.parse(kind, await request.body())
    writer: EventWriter | None = getattr(request.app.state, "event_writer", None)
    if writer is None:
        raise DatabaseUnavailableError("Die Ereignisannahme läuft nicht.")
    stored = RawEvent(
        digest, event.event_name, event.room_name, event.occupant_key, event.occurred_at, raw
    )
    await writer.store(stored)
    return Response(_STORED, media_type="application/json")


@router.post("/room/created", openapi_extra=_documented(RoomCreated))
async def room_created(request: Request) -> Response:
    """muc-room-created."""
    return await _receive(request, RoomCreated)


@router.post("/room/destroyed", openapi_extra=_documented(RoomDestroyed))
async def room_destroyed(request: Request) -> Response:
    """muc-room-destroyed, with everyone who was in the room (heals lost occupant/left)."""
    return await _receive(request, RoomDestroyed)


@router.post("/occupant/joined", openapi_extra=_documented(OccupantJoined))
async def occupant_joined(request: Request) -> Response:
    """muc-occupant-joined."""
    return await _receive(request, OccupantJoined)


@router.post("/occupant/left", openapi_extra=_documented(OccupantLeft))
async def occupant_left(request: Request) -> Response:
    """muc-occupant-left."""
    return await _receive(request, OccupantLeft)


# --- the background tasks ---------------------------------------------------------------------


async def wait_or_stop(stop_event: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True as soon as `stop_event` is set."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stop_event.wait(), seconds)
    return stop_event.is_set()


async def _wake_or_interval(wake: asyncio.Event, stop_event: asyncio.Event, seconds: float) -> None:
    waiters = {asyncio.create_task(wake.wait()), asyncio.create_task(stop_event.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def run_folder(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    stop_event: asyncio.Event,
    interval: float = 5.0,
    *,
    wake: asyncio.Event | None = None,
    debounce: float = 1.0,
    templates: Mapping[str, RoomTemplate] | None = None,
) -> None:
    """Fold at start, every `interval` seconds, and soon after a wake-up (a write).

    After a wake-up it waits `debounce` seconds, and at least twice as long as the last fold
    took: under a burst the folder takes at most a third of the event loop, the answers
    to event_sync the rest, and each fold gathers more events.
    """
    wake = wake or asyncio.Event()
    while not stop_event.is_set():
        wake.clear()
        started = time.monotonic()
        try:
            await fold_all(sessions, clock, templates)
        except Exception:  # fold later; the events stay unprocessed meanwhile
            log.exception("attendance.fold_failed")
        took = time.monotonic() - started
        await _wake_or_interval(wake, stop_event, interval)
        if not stop_event.is_set() and wake.is_set():
            await wait_or_stop(stop_event, max(debounce, 2 * took))  # let a burst gather


async def _census_loop(state: State, stop_event: asyncio.Event, interval: float) -> None:
    """Every `interval` seconds compare prosody's census with our open intervals."""
    watch = CensusWatch()
    # One attempt per check, failures at debug: CensusWatch says when prosody comes and goes.
    async with ProsodyClient(state.settings, clock=state.clock, retries=0, quiet=True) as client:
        while not await wait_or_stop(stop_event, interval):
            try:
                await check_once(state, client, watch)
            except Exception:  # a cross-check only: never let it stop for good
                log.exception("attendance.census_failed")


@asynccontextmanager
async def intake(
    app: FastAPI, *, fold_interval: float | None = 5.0, census_interval: float | None = 60.0
) -> AsyncIterator[None]:
    """Run the event writer, the folder and the census cross-check while the app serves.

    Call from the app's lifespan before the engine is disposed; a second call is a no-op.
    `None` turns the folder or the census cross-check off.
    """
    state = app.state
    if getattr(state, "event_writer", None) is not None:
        yield
        return
    wake, stop = asyncio.Event(), asyncio.Event()
    writer = EventWriter(state.sessions, state.clock, on_commit=wake.set)
    writer.start()
    state.event_writer = writer
    folder = census = None
    if fold_interval is not None:
        folding = run_folder(
            state.sessions,
            state.clock,
            stop,
            fold_interval,
            wake=wake,
            templates=state.room_templates,
        )
        folder = asyncio.create_task(folding, name="attendance.folder")
    if census_interval is not None:
        checking = _census_loop(state, stop, census_interval)
        census = asyncio.create_task(checking, name="attendance.census")
    try:
        yield
    finally:
        await writer.stop()
        state.event_writer = None
        stop.set()  # the folder finishes its fold
        if census is not None:
            census.cancel()  # it may be waiting for prosody; nothing to finish
        await asyncio.gather(*(t for t in (folder, census) if t), return_exceptions=True)
        await _fold_on_the_way_down(state)


async def _fold_on_the_way_down(state: State) -> None:
    """Fold what was accepted since the last fold (the folder waits for a burst to gather),
    so a clean shutdown leaves nothing pending; what a crash leaves, the next start folds."""
    try:
        folded = await fold_all(state.sessions, state.clock, state.room_templates, wait=True)
    except Exception:  # the events stay stored; the next start folds them
        log.exception("attendance.fold_failed")
        return
    if folded:
        log.info("attendance.folded_at_shutdown", extra={"events": folded})
