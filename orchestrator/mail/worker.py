"""The mail sender as a background service: engine, transport and loop wired from settings."""

from __future__ import annotations

import asyncio
import logging
import ssl
from contextlib import suppress

from orchestrator.clock import Clock, system_clock
from orchestrator.config import Settings
from orchestrator.db import create_engine, session_factory
from orchestrator.mail.sender import OutboxSender, SenderOptions
from orchestrator.mail.smtp import envelope_sender, transport_for

log = logging.getLogger(__name__)


async def run_sender(
    settings: Settings,
    *,
    stop_event: asyncio.Event,
    options: SenderOptions | None = None,
    clock: Clock = system_clock,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Send queued mail until `stop_event` is set, then finish in-flight mail and close."""
    options = options or SenderOptions()
    engine = create_engine(settings.resolved_database_url, pool_pre_ping=True)
    transport = transport_for(settings, connections=options.concurrency, tls_context=tls_context)
    sender = OutboxSender(
        session_factory(engine),
        transport,
        envelope_sender(settings.mail_from),
        options=options,
        clock=clock,
    )
    log.info("mail.sender_started", extra={"transport": type(transport).__name__})
    loop = asyncio.create_task(sender.run())
    try:
        await _until_stopped(stop_event, loop)
        sender.stop()
        await loop
    finally:
        if not loop.done():
            loop.cancel()
            with suppress(asyncio.CancelledError):
                await loop
        await transport.close()
        await engine.dispose()
        log.info("mail.sender_stopped")


async def _until_stopped(stop_event: asyncio.Event, loop: asyncio.Task[None]) -> None:
    waiter = asyncio.create_task(stop_event.wait())
    try:
        await asyncio.wait({waiter, loop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        with suppress(asyncio.CancelledError):
            await waiter
