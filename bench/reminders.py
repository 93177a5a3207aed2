"""5,000 fifteen-minute reminders due at one instant, delivered by the worker; vs invitations.

    .venv/bin/python bench/reminders.py [--people 5000] [--invite-people 5000] [--lead 20]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Setup (not timed): a fresh SQLite file (or a scratch PostgreSQL database) with the sample
conference and N generated people, all invited and accepted, forums assigned; reminder
offsets ["PT15M"] only, and the programme moved so that the opening starts 15 minutes
after an instant `--lead` seconds ahead: N reminders fall due at that same instant,
nothing else near it. Then the real
worker (`orchestrator worker`: lock, APScheduler wake-up, sender) starts in a process of its
own and delivers to aiosmtpd's Sink in a third process. Timed, from the database: from the
tick's first claim (the reminders' earliest `handled_at`) to the last `sent_at`.

Same run, for the ratio: `bench/invites.py`'s pipeline (render + queue in this process, a
sender process delivers) for `--invite-people`, and a bare aiosmtplib loop sending the very
reminder bytes over one connection to the same sink.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from bench.common import add_database_url, scratch_database
from bench.invites import count_sent, pipeline, stored_bodies
from bench.invites import setup as setup_people
from bench.outbox_send import FROM, HOST, bare_loop, sink_server
from orchestrator.conferences import repository
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants.models import Person, Rsvp
from orchestrator.scheduling.models import Reminder, ReminderState
from orchestrator.scheduling.planning import replan

ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
SLUG = "ik-heinsberg-2027"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--invite-people", type=int, default=5000)
    parser.add_argument("--lead", type=float, default=20.0, help="seconds until they fall due")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=250)
    add_database_url(parser)
    return parser.parse_args()


async def plan_due_at_once(url: str, lead: float) -> tuple[datetime, int]:
    """Everyone invited and coming; their opening's PT15M due `lead` s from now; how many."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    due = now + timedelta(seconds=lead)
    async with transaction(session_factory(engine)) as session:
        await session.execute(update(Person).values(rsvp=Rsvp.ACCEPTED, invited_at=now))
        conference = await repository.get_by_slug(session, SLUG)
        conference.reminder_offsets = ["PT15M"]
        first = min(item.starts_at for item in conference.sessions)
        shift = due + timedelta(minutes=15) - first
        for item in conference.sessions:
            item.starts_at, item.ends_at = item.starts_at + shift, item.ends_at + shift
        await replan(session, conference, now)
    async with session_factory(engine)() as session:
        statement = select(func.count()).where(Reminder.due_at == due)
        count = (await session.execute(statement)).scalar_one()
    await engine.dispose()
    return due, count


def start_worker(url: str, port: int, directory: Path, concurrency: int) -> subprocess.Popen[bytes]:
    """`orchestrator worker` against the bench database and the sink."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    env |= {
        "ORCH_ENV_FILE": "/nonexistent",
        "ORCH_DATA_DIR": str(directory / "worker-data"),
        "ORCH_DATABASE_URL": url,
        "ORCH_SMTP_HOST": HOST,
        "ORCH_SMTP_PORT": str(port),
        "ORCH_MAIL_FROM": FROM,
        "ORCH_MAIL_CONCURRENCY": str(concurrency),
        "ORCH_LOG_LEVEL": "WARNING",  # as the invitations bench's sender: no line per mail
    }
    return subprocess.Popen([str(ORCHESTRATOR), "worker"], env=env)


@dataclass(frozen=True)
class Delivery:
    """When the tick began (its first claim), when the last reminder was marked sent."""

    due: datetime
    first_claim: datetime
    last_sent: datetime
    sent: int

    @property
    def seconds(self) -> float:
        return (self.last_sent - self.first_claim).total_seconds()


async def delivery(url: str, due: datetime) -> Delivery:
    """Read the timings back from the rows (every reminder queued, every mail sent once)."""
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        claims = select(func.min(Reminder.handled_at), func.count()).where(
            Reminder.due_at == due, Reminder.state == ReminderState.QUEUED
        )
        first_claim, queued = (await session.execute(claims)).one()
        mails = select(func.max(OutboxMessage.sent_at), func.count()).where(
            OutboxMessage.state == OutboxState.SENT
        )
        last_sent, sent = (await session.execute(mails)).one()
    await engine.dispose()
    assert queued == sent, f"{queued} reminders queued, {sent} mails sent"
    assert first_claim is not None and last_sent is not None, "nothing was sent"
    return Delivery(due, first_claim, last_sent, sent)


async def reminders_run(url: str, port: int, directory: Path, args: argparse.Namespace) -> Delivery:
    """Plan, start the worker, wait until every reminder is delivered, stop the worker."""
    await setup_people(url, args.people)
    due, count = await plan_due_at_once(url, args.lead)
    worker = start_worker(url, port, directory, args.concurrency)
    try:
        deadline = time.monotonic() + args.lead + 600
        while await count_sent(url) < count:
            assert worker.poll() is None, "the worker died"
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    return await delivery(url, due)


async def invitations_rate(url: str, port: int, args: argparse.Namespace) -> float:
    """bench/invites.py's pipeline rate (render + queue + deliver), messages per second."""
    await setup_people(url, args.invite_people)
    options = argparse.Namespace(chunk=args.chunk, concurrency=args.concurrency)
    run = await pipeline(url, port, options)
    return run.queued / run.seconds


async def bare_rate(url: str, port: int) -> tuple[float, float]:
    """A plain loop over one connection with the stored reminder bytes; and their size."""
    bodies = await stored_bodies(url)
    started = time.perf_counter()
    await bare_loop(port, bodies)
    size = sum(len(body) for _, body in bodies) / len(bodies)
    return len(bodies) / (time.perf_counter() - started), size


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as name, sink_server() as port:
        async with scratch_database(args.database_url) as url:
            run = await reminders_run(url, port, Path(name), args)
            bare, size = await bare_rate(url, port)
        async with scratch_database(args.database_url) as url:
            invites = await invitations_rate(url, port, args)
    late = (run.first_claim - run.due).total_seconds()
    ours = run.sent / run.seconds
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{run.sent} PT15M reminders due at one instant, {size / 1024:.1f} KB each, {backend}")
    print(f"tick began {late:.2f} s after the due instant (APScheduler wake-up)")
    rows = [
        (f"reminders: first claim to last delivered ({run.seconds:.1f} s)", ours),
        (f"invitations pipeline ({args.invite_people} people)", invites),
        ("bare aiosmtplib loop (reminder bytes)", bare),
    ]
    for label, rate in rows:
        print(f"{label:<52} {rate:8.0f} msgs/s")
    print(f"ratio reminders / invitations: {ours / invites:.0%}")
    print(f"ratio reminders / bare loop:   {ours / bare:.0%}")


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
