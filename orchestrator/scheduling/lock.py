"""One active worker per database: a PostgreSQL advisory lock held for the worker's lifetime.

The lock is a session lock on a connection of its own (autocommit, so it never sits idle in
a transaction). It lives exactly as long as that connection: when the worker process dies,
PostgreSQL ends its session and the lock is free for the next worker, which has been
retrying every `poll` seconds. A watchdog pings the connection; if it breaks (a database
restart), `WorkerLock.lost` is set so the worker stops and competes for the lock again.

SQLite: a no-op. SQLite means one machine and one worker; should two run on one file anyway,
the atomic claims of reminders and outbox rows still keep them from sending twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# A stable signed 64-bit key derived from a name, so no other application's key collides
# by accident (advisory lock keys are per database).
WORKER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"orchestrator-worker").digest()[:8], "big", signed=True
)
_TROUBLE = (OSError, SQLAlchemyError)


@dataclass
class WorkerLock:
    """Whether the lock was taken (False: stopped while waiting) and whether it was lost."""

    held: bool
    lost: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def worker_lock(
    engine: AsyncEngine,
    key: int = WORKER_LOCK_KEY,
    *,
    poll: float = 5.0,
    stop_event: asyncio.Event | None = None,
) -> AsyncIterator[WorkerLock]:
    """Hold the worker lock inside the block; wait for it first, unless `stop_event` is set."""
    if engine.dialect.name != "postgresql":
        yield WorkerLock(held=True)
        return
    connection = await _acquire(engine, key, poll, stop_event or asyncio.Event())
    if connection is None:
        yield WorkerLock(held=False)
        return
    lock = WorkerLock(held=True)
    log.info("worker.lock_held", extra={"key": key})
    watchdog = asyncio.create_task(_watch(connection, poll, lock.lost))
    try:
        yield lock
    finally:
        watchdog.cancel()
        with suppress(asyncio.CancelledError):
            await watchdog
        await _drop(connection)
        log.info("worker.lock_released", extra={"key": key})


async def _acquire(
    engine: AsyncEngine, key: int, poll: float, stop: asyncio.Event
) -> AsyncConnection | None:
    """A connection holding the lock, or None once `stop` is set; retries every `poll` s."""
    waiting = False
    while not stop.is_set():
        connection = await _try_lock(engine, key)
        if connection is not None:
            return connection
        if not waiting:
            log.info("worker.waiting_for_lock", extra={"key": key, "poll": poll})
            waiting = True
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll)
    return None


async def _try_lock(engine: AsyncEngine, key: int) -> AsyncConnection | None:
    """One attempt on an autocommit connection; kept (out of the pool) only if granted."""
    connection: AsyncConnection | None = None
    try:
        connection = await engine.connect()
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        if await connection.scalar(select(func.pg_try_advisory_lock(key))):
            return connection
        await connection.close()  # not granted, so nothing held: back to the pool
    except _TROUBLE as error:  # the database is down or restarting: try again later
        log.warning("worker.lock_error", extra={"reason": f"{type(error).__name__}: {error}"})
        if connection is not None:
            await _drop(connection)
    return None


async def _watch(connection: AsyncConnection, every: float, lost: asyncio.Event) -> None:
    """Ping the lock's connection; a failure means the session, and the lock, are gone."""
    while True:
        await asyncio.sleep(every)
        try:
            await connection.execute(text("SELECT 1"))
        except _TROUBLE as error:
            log.error("worker.lock_lost", extra={"reason": f"{type(error).__name__}: {error}"})
            lost.set()
            return


async def _drop(connection: AsyncConnection) -> None:
    """Close the physical connection: a pooled one would keep its session, and the lock."""
    with suppress(*_TROUBLE):
        await connection.invalidate()
    with suppress(*_TROUBLE):
        await connection.close()
