"""The worker: under the worker lock, the mail sender and the reminder scheduler together.

One worker is active per database. On PostgreSQL it holds an advisory lock
(`scheduling.lock`); a second worker waits for it and takes over when the first dies. The
lock is taken before anything runs, so a waiting worker neither sends mail nor ticks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.clock import Clock, system_clock
from orchestrator.config import Settings
from orchestrator.db import create_engine, session_factory
from orchestrator.mail.sender import OutboxSender, SenderOptions, Transport
from orchestrator.mail.smtp import envelope_sender, transport_for
from orchestrator.scheduling.lock import worker_lock
from orchestrator.scheduling.scheduler import BATCH_SIZE, ReminderScheduler

log = logging.getLogger(__name__)


def sender_options(settings: Settings) -> SenderOptions:
    return SenderOptions(concurrency=settings.mail_concurrency, rate=settings.mail_rate)


async def run_worker(
    settings: Settings, *, stop_event: asyncio.Event, clock: Clock = system_clock
) -> None:
    """Wait for the worker lock, then send mail and run the reminder jobs until stopped."""
    url = settings.resolved_database_url
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    log.info("worker.started")
    try:
        while not stop_event.is_set():  # a lost lock (database restart): compete again
            poll = settings.worker_lock_poll_seconds
            async with worker_lock(engine, poll=poll, stop_event=stop_event) as lock:
                if lock.held:
                    await _run_jobs(settings, engine, clock, (stop_event, lock.lost))
    finally:
        await engine.dispose()
        log.info("worker.stopped")


def _sender(settings: Settings, engine: AsyncEngine, clock: Clock) -> OutboxSender:
    options = sender_options(settings)
    transport = transport_for(settings, connections=options.concurrency)
    sessions, envelope = session_factory(engine), envelope_sender(settings.mail_from)
    return OutboxSender(sessions, transport, envelope, options=options, clock=clock)


def _pace(engine: AsyncEngine) -> tuple[int, float]:
    """Reminders per tick batch, and seconds between batches.

    SQLite has one writer, and a batch holds the write lock while it renders: short batches
    and a breath between them (longer than SQLite's 100 ms busy-wait step) let the sender
    and web requests in while thousands of reminders fall due at once.
    """
    return (100, 0.15) if engine.dialect.name == "sqlite" else (BATCH_SIZE, 0.0)


async def _run_jobs(
    settings: Settings, engine: AsyncEngine, clock: Clock, stops: Sequence[asyncio.Event]
) -> None:
    """The sender and the scheduler until one of `stops` is set; both end cleanly."""
    sender = _sender(settings, engine, clock)
    batch_size, pause = _pace(engine)
    scheduler = ReminderScheduler(
        session_factory(engine),
        settings,
        clock=clock,
        on_queued=sender.notify,
        batch_size=batch_size,
        pause=pause,
    )
    log.info("mail.sender_started", extra={"transport": type(sender.transport).__name__})
    sending = asyncio.create_task(sender.run())
    starting = asyncio.create_task(scheduler.start())  # its catch-up tick may take a while
    try:
        await _until_any(stops, sending)
    finally:
        await scheduler.stop()  # the batch in flight is committed, no further one begins
        await starting
        sender.stop()  # finish the mail in flight, give back the rest
        await _finish(sending)
        await _close(sender.transport)
        log.info("mail.sender_stopped")


async def _until_any(events: Sequence[asyncio.Event], task: asyncio.Task[None]) -> None:
    """Until one of the events is set, or the task ends (its error is raised)."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait({*waiters, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if task.done():
        task.result()


async def _finish(task: asyncio.Task[None]) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=60)
    except TimeoutError:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _close(transport: Transport) -> None:
    with suppress(Exception):
        await transport.close()


def stop_on_signals(stop_event: asyncio.Event) -> None:
    """SIGTERM/SIGINT finish the mail in flight, then stop."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_event.set)
