"""The worker process: the mail sender and the scheduled jobs, stopped by one event."""

from __future__ import annotations

import asyncio
import logging
import signal

from orchestrator.clock import Clock, system_clock
from orchestrator.config import Settings
from orchestrator.mail.sender import SenderOptions
from orchestrator.mail.worker import run_sender

log = logging.getLogger(__name__)


def sender_options(settings: Settings) -> SenderOptions:
    return SenderOptions(concurrency=settings.mail_concurrency, rate=settings.mail_rate)


async def run_worker(
    settings: Settings, *, stop_event: asyncio.Event, clock: Clock = system_clock
) -> None:
    """Run every background job until `stop_event` is set."""
    log.info("worker.started")
    await asyncio.gather(
        run_sender(settings, stop_event=stop_event, options=sender_options(settings), clock=clock)
    )
    log.info("worker.stopped")


def stop_on_signals(stop_event: asyncio.Event) -> None:
    """SIGTERM/SIGINT finish the mail in flight, then stop."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_event.set)
