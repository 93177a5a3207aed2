"""Invitations for everyone not yet invited, chunk by chunk, then the calendar changes.

Each chunk commits on its own (see `invite_everyone`); the mails themselves are built by
`service`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import Clock
from orchestrator.conferences import repository
from orchestrator.db import transaction
from orchestrator.invitations.desired import Run
from orchestrator.invitations.service import Report, _process, _Scope, sync_changes
from orchestrator.invitations.waitlist import Notices, queue_waitlist_notices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """Where links point, who sends, and the clock: what every run of mails needs."""

    base_url: str
    domain: str
    sender: str
    clock: Clock


_CHUNK_TRIES = 10


async def _invite_chunk(
    sessions: async_sessionmaker[AsyncSession],
    slug: str,
    context: Context,
    chunk: int,
    after: str | None,
    person_ids: Collection[uuid.UUID] | None = None,
) -> tuple[Report, str | None]:
    """One chunk in its own transaction. A concurrent run that invited some of the same
    people first (possible on SQLite, which has no row lock to wait on) makes the insert
    fail on a unique key: roll back, wait a random moment (so two runs stop walking in
    step) and take the chunk again, now without them."""
    for attempt in range(1, _CHUNK_TRIES + 1):
        try:
            async with transaction(sessions) as session:
                conference = await repository.get_by_slug(session, slug)
                now = context.clock()
                run = Run(conference, context.base_url, context.domain, context.sender, now)
                scope = _Scope(limit=chunk, after=after, person_ids=person_ids)
                return await _process(session, run, scope, invite=True)
        except IntegrityError:
            if attempt == _CHUNK_TRIES:
                raise
            log.info("invitations.chunk_retried", extra={"conference": slug, "after": after})
            await asyncio.sleep(random.uniform(0.01, 0.1))  # noqa: S311 (jitter, not a secret)
    raise AssertionError("unreachable")


async def invite_everyone(
    sessions: async_sessionmaker[AsyncSession],
    slug: str,
    *,
    base_url: str,
    message_domain: str,
    sender: str,
    clock: Clock,
    chunk: int = 250,
    person_ids: Collection[uuid.UUID] | None = None,
) -> tuple[Report, Report]:
    """Queue invitations for everyone not yet invited (only `person_ids`, if given), `chunk`
    people per transaction; then updates and cancellations for changed calendars (of those
    people only, if given). Idempotent: a second run adds nothing.

    Each chunk commits on its own: a running sender delivers the first invitations while
    the rest are rendered; a crash keeps what was committed and the next run goes on from
    there; on SQLite no other writer (join clicks, Jitsi events) waits for the whole run;
    and an event loop serves other requests between chunks.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    invited, after, started = Report(), None, clock()
    context = Context(base_url, message_domain, sender, clock)
    while True:
        report, after = await _invite_chunk(sessions, slug, context, chunk, after, person_ids)
        invited.add(report)
        if after is None:
            break
    log.info("invitations.queued", extra={"conference": slug, **asdict(invited)})
    async with transaction(sessions) as session:
        conference = await repository.get_by_slug(session, slug)
        # Those just invited hold the current calendar; a change made meanwhile ran its own sync.
        changes = await sync_changes(
            session,
            conference,
            base_url=base_url,
            message_domain=message_domain,
            sender=sender,
            now=clock(),
            person_ids=person_ids,
            invited_before=started,
        )
        # Those just invited and waiting for a forum seat are told so now, not at the next change.
        notices = Notices(base_url, message_domain, sender, clock())
        changes.queued += await queue_waitlist_notices(session, conference, notices)
    return invited, changes
