"""Invitation runs started from the workspace, and the live counts of their mail.

A run is `invitations.runs.invite_everyone` (the JSON API's send, chunk by chunk) as a
background task on the app's event loop: the request that starts it returns at once. One
run per conference at a time (a second start while one runs is refused); the task is held
in `app.state` so it is not collected, and it drops out when done. A run that fails is
logged; what it committed stays, and a new run goes on from there (runs are idempotent).

`progress_events` is the server-sent event stream of a conference's invitation counts
(the same `counts_by_state` the JSON API's progress answers with): an event whenever the
counts change, and `done` once no run is going and nothing waits to be sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import asdict, dataclass

from fastapi import FastAPI

from orchestrator.conferences.models import Conference
from orchestrator.config import Settings
from orchestrator.invitations import runs, service
from orchestrator.mail.models import OutboxState
from orchestrator.mail.outbox import counts_by_state
from orchestrator.mail.rendering import message_domain

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between two looks at the outbox
STREAM_SECONDS = 300  # then the stream ends; the browser's EventSource reconnects itself
RECONNECT_MS = 3000


@dataclass(frozen=True)
class Figures:
    """A conference's invitation mails: waiting (queued, sending, retry), sent, failed."""

    waiting: int
    sent: int
    failed: int
    total: int
    running: bool

    @property
    def done(self) -> int:
        return self.sent + self.failed

    @property
    def finished(self) -> bool:
        return not self.running and self.waiting == 0


def _runs(app: FastAPI) -> dict[int, asyncio.Task[None]]:
    runs: dict[int, asyncio.Task[None]] | None = getattr(app.state, "invitation_runs", None)
    if runs is None:
        runs = app.state.invitation_runs = {}
    return runs


def running(app: FastAPI, conference_id: int) -> bool:
    """Whether an invitation run of this conference is going in this process."""
    task = _runs(app).get(conference_id)
    return task is not None and not task.done()


async def _run(app: FastAPI, slug: str, person_ids: Collection[uuid.UUID] | None) -> None:
    settings: Settings = app.state.settings
    try:
        invited, changed = await runs.invite_everyone(
            app.state.sessions,
            slug,
            base_url=settings.base_url,
            message_domain=message_domain(settings.mail_from),
            sender=settings.mail_from,
            clock=app.state.clock,
            person_ids=person_ids,
        )
    except Exception:
        log.exception("invitations.run_failed", extra={"conference": slug})
        return
    figures = {"invited": asdict(invited), "changed": asdict(changed)}
    log.info("invitations.run_done", extra={"conference": slug, **figures})


def start(
    app: FastAPI, conference: Conference, person_ids: Collection[uuid.UUID] | None = None
) -> bool:
    """Start a run in the background (everyone not yet invited, or only `person_ids`);
    False when one is going already."""
    if running(app, conference.id):
        return False
    runs = _runs(app)
    task = asyncio.create_task(_run(app, conference.slug, person_ids), name="invitations.run")
    runs[conference.id] = task
    task.add_done_callback(lambda done: runs.pop(conference.id, None) if done is task else None)
    return True


async def figures(app: FastAPI, conference_id: int) -> Figures:
    """The invitation counts now (a session of its own: streams outlive their request's)."""
    async with app.state.sessions() as session:
        counts = await counts_by_state(session, conference_id, service.INVITATION)
    waiting = sum(counts[state] for state in ("queued", "sending", "retry"))
    return Figures(
        waiting=waiting,
        sent=counts[OutboxState.SENT.value],
        failed=counts[OutboxState.FAILED.value],
        total=sum(counts.values()),
        running=running(app, conference_id),
    )


def _event(name: str, found: Figures) -> str:
    data = {**asdict(found), "done": found.done, "finished": found.finished}
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def progress_events(app: FastAPI, conference_id: int) -> AsyncIterator[str]:
    """`progress` events with the counts (when they change), then `done` when finished."""
    yield f"retry: {RECONNECT_MS}\n\n"
    last, started = None, time.monotonic()
    while True:
        found = await figures(app, conference_id)
        if found != last:
            yield _event("progress", found)
            last = found
        if found.finished:
            yield _event("done", found)
            return
        if time.monotonic() - started > STREAM_SECONDS:
            return
        await asyncio.sleep(TICK)
