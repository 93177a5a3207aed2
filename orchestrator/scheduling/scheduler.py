"""The reminder scheduler: fixed APScheduler jobs in the worker around the reminder rows.

Schedules are data (the `reminders` table); APScheduler only decides when to look. It runs
in the one worker process that holds the worker lock, never once per web process (APScheduler
3 cannot share a job store between processes). Its fixed jobs:

- `wakeup`: a date job at the earliest due time, set again after every tick and replan;
- `sweep`: a tick every `worker_sweep_seconds`, the safety net for rows planned by another
  process (an API process, the CLI) and for a missed wake-up;
- `replan`: at start and every few minutes, the plans of all conferences not over yet.

A tick claims due rows in batches, each in one transaction (`claim_due`, `handle_due`,
commit), so a sweep and a wake-up firing together never queue a reminder twice; after each
batch that queued mail the sender is told. Due times are judged by the injected clock, while
APScheduler's timers run on real time: tests call `tick()` with a FrozenClock instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.retention import retention_job
from orchestrator.clock import Clock, system_clock
from orchestrator.conferences.models import Conference, ConferenceSession, ConferenceStatus
from orchestrator.conferences.repository import CONFERENCE_GRAPH
from orchestrator.config import Settings
from orchestrator.db import transaction
from orchestrator.mail.rendering import message_domain
from orchestrator.scheduling.handling import HandleReport, claim_due, handle_due, next_due_at
from orchestrator.scheduling.planning import NO_SHOW_AFTER, ReplanReport, replan

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
BATCH_SIZE = 500
REPLAN_SECONDS = 300.0
RETENTION_SECONDS = 6 * 3600  # data past its retention period goes within hours
# A row still due after a tick could not be claimed (another transaction holds it): look
# again this soon instead of spinning.
RETRY_GAP = timedelta(seconds=1)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


@dataclass
class TickReport:
    """What one tick did, over all its batches."""

    batches: int = 0
    claimed: int = 0
    queued: int = 0
    skipped: int = 0
    moved: int = 0

    def add(self, claimed: int, report: HandleReport) -> None:
        """Count one batch."""
        self.batches += 1
        self.claimed += claimed
        self.queued += report.queued
        self.skipped += report.skipped
        self.moved += report.moved


class ReminderScheduler:
    """Wake-up, sweep and replan jobs; `tick` and `replan_now` may also be called directly."""

    def __init__(
        self,
        sessions: Sessions,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        on_queued: Callable[[], None] | None = None,
        batch_size: int = BATCH_SIZE,
        pause: float = 0.0,
        replan_seconds: float = REPLAN_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.batch_size = batch_size
        self.pause = pause  # seconds between batches: other writers' turn (SQLite)
        self.sweep_seconds = settings.worker_sweep_seconds
        self.replan_seconds = replan_seconds
        self.wakeup_at: datetime | None = None  # the earliest due time after the last tick
        self._base_url, self._sender = settings.base_url, settings.mail_from
        self._on_queued = on_queued or (lambda: None)
        self._jobs = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._busy = asyncio.Lock()  # one tick or replan at a time in this process
        self._stopping = False

    async def start(self) -> None:
        """Start the fixed jobs and tick at once (catch up on what fell due meanwhile).

        The first replan follows straight after that tick: it plans what was written by tools
        that do not replan themselves (the demo data), or while no worker ran.
        """
        if self._stopping:
            return
        self._jobs.start()
        self._jobs.add_job(self._run_tick, "interval", seconds=self.sweep_seconds, id="sweep")
        self._jobs.add_job(
            self._run_replan,
            "interval",
            seconds=self.replan_seconds,
            id="replan",
            next_run_time=datetime.now(UTC),
        )
        self._jobs.add_job(
            self._run_retention,
            "interval",
            seconds=RETENTION_SECONDS,
            id="retention",
            next_run_time=datetime.now(UTC),
        )
        log.info("reminders.scheduler_started", extra={"sweep_seconds": self.sweep_seconds})
        await self._run_tick("start")

    async def stop(self) -> None:
        """Let the tick or replan in flight finish, then stop every job."""
        self._stopping = True
        async with self._busy:
            if self._jobs.running:
                self._jobs.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        log.info("reminders.scheduler_stopped")

    def job_times(self) -> dict[str, datetime | None]:
        """Each scheduled job's next run time, by job id."""
        jobs = self._jobs.get_jobs() if self._jobs.running else []
        return {str(job.id): cast(datetime | None, job.next_run_time) for job in jobs}

    # --- ticks -----------------------------------------------------------------------

    async def tick(self, trigger: str = "call") -> TickReport:
        """Queue every due reminder, batch by batch; tell the sender; set the next wake-up."""
        report = TickReport()
        async with self._busy:
            while not self._stopping:
                claimed, batch = await self._batch()
                report.add(claimed, batch)
                if batch.queued:
                    self._on_queued()
                if claimed < self.batch_size or not batch.queued + batch.skipped + batch.moved:
                    break  # all done, or a full batch left as it was: the next sweep retries
                await asyncio.sleep(self.pause)
            await self._reschedule()
        level = logging.INFO if report.claimed else logging.DEBUG
        fields = {"trigger": trigger, **asdict(report), "next_due": self.wakeup_at}
        log.log(level, "reminders.tick", extra=fields)
        return report

    async def _batch(self) -> tuple[int, HandleReport]:
        """One transaction: claim up to a batch of due rows, queue or skip them, commit."""
        now = self.clock()
        async with transaction(self.sessions) as session:
            rows = await claim_due(session, now, self.batch_size)
            if not rows:
                return 0, HandleReport()
            report = await handle_due(
                session,
                rows,
                now,
                base_url=self._base_url,
                message_domain=message_domain(self._sender),
                sender=self._sender,
            )
        return len(rows), report

    async def _run_tick(self, trigger: str = "sweep") -> None:
        """A job's tick: errors are logged, the next sweep tries again."""
        if self._stopping:
            return
        try:
            await self.tick(trigger)
        except Exception:
            log.exception("reminders.tick_failed", extra={"trigger": trigger})

    async def _reschedule(self) -> None:
        """Set the wake-up job to the earliest due time (none when nothing is planned)."""
        async with self.sessions() as session:
            due = await next_due_at(session)
        self.wakeup_at = due
        if self._stopping or not self._jobs.running:
            return
        if due is None:
            if self._jobs.get_job("wakeup") is not None:
                self._jobs.remove_job("wakeup")
            return
        run_at = due if due > self.clock() else datetime.now(UTC) + RETRY_GAP
        wakeup = {"run_date": run_at, "args": ["wakeup"], "id": "wakeup"}
        self._jobs.add_job(self._run_tick, "date", replace_existing=True, **wakeup)

    # --- replanning ------------------------------------------------------------------

    async def replan_now(self, conference_id: int) -> ReplanReport | None:
        """Plan one conference's reminders again (after a change), then reset the wake-up."""
        async with self._busy:
            report = await self._replan(conference_id, self.clock())
            await self._reschedule()
        return report

    async def replan_all(self) -> int:
        """Plan every conference not over yet again (a safety net); returns how many."""
        done = 0
        for conference_id in await self._open_conferences(self.clock()):
            if self._stopping:
                break
            try:
                async with self._busy:
                    await self._replan(conference_id, self.clock())
                done += 1
            except Exception:  # one broken conference must not hold up the others
                log.exception("reminders.replan_failed", extra={"conference_id": conference_id})
        async with self._busy:
            await self._reschedule()
        return done

    async def _run_retention(self) -> None:
        """Delete or anonymise what has passed its conference's retention period (§4.11)."""
        if self._stopping:
            return
        try:
            await retention_job(self.sessions, self.clock)
        except Exception:
            log.exception("attendance.retention_failed")

    async def _run_replan(self) -> None:
        if self._stopping:
            return
        try:
            await self.replan_all()
        except Exception:
            log.exception("reminders.replan_failed")

    async def _open_conferences(self, now: datetime) -> list[int]:
        """Conferences not archived whose last reminder (the no-show mail) is still ahead."""
        recent = select(ConferenceSession.conference_id).where(
            ConferenceSession.ends_at > now - NO_SHOW_AFTER
        )
        statement = (
            select(Conference.id)
            .where(Conference.status != ConferenceStatus.ARCHIVED, Conference.id.in_(recent))
            .order_by(Conference.id)
        )
        async with self.sessions() as session:
            return list(await session.scalars(statement))

    async def _replan(self, conference_id: int, now: datetime) -> ReplanReport | None:
        statement = select(Conference).where(Conference.id == conference_id)
        async with transaction(self.sessions) as session:
            conference = await session.scalar(statement.options(*CONFERENCE_GRAPH))
            if conference is None:
                return None
            return await replan(session, conference, now)
