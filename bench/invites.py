"""Invitations rendered and delivered vs a bare aiosmtplib loop (SPEC §6 bar: >= 50 %).

    .venv/bin/python bench/invites.py [--people 5000] [--chunk 250] [--concurrency 4]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Setup (not timed): a fresh SQLite file, or with --database-url a scratch PostgreSQL
database created on that server (and dropped afterwards), with the sample conference, N
generated people, forums assigned. Timed pipeline, as deployed: this process queues the
invitations chunk by chunk with `invite_everyone`, the path of `invites send` and of the
API (render text, HTML and iCalendar; store in the outbox; commit), while a worker
process (`orchestrator.mail.worker.run_sender`) claims and delivers them to aiosmtpd's
Sink in a third process; the clock stops when the last message is marked sent.
Bare limit, same run: the very bytes the pipeline stored, sent in a plain loop over one
reused aiosmtplib connection to the same sink.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from bench.common import SAMPLE, add_database_url, scratch_database
from bench.outbox_send import FROM, HOST, bare_loop, sink_server
from orchestrator.clock import system_clock
from orchestrator.conferences import repository
from orchestrator.conferences.service import import_file
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.demo.people import generate
from orchestrator.invitations.runs import invite_everyone
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.mail.rendering import message_domain
from orchestrator.participants import assignment, importing
from orchestrator.schema import upgrade

WORKER = """
import asyncio, sys
from orchestrator.config import Settings
from orchestrator.mail.sender import SenderOptions
from orchestrator.mail.worker import run_sender
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    settings = Settings(_env_file=None, database_url=sys.argv[1], smtp_host=sys.argv[2],
                        smtp_port=int(sys.argv[3]), mail_from=sys.argv[4])
    options = SenderOptions(concurrency=int(sys.argv[5]), poll_interval=0.05)
    await run_sender(settings, stop_event=stop, options=options)
asyncio.run(main())
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--concurrency", type=int, default=4)
    add_database_url(parser)
    return parser.parse_args()


async def setup(url: str, people: int) -> None:
    """The sample conference with `people` invitees, all assigned a forum."""
    engine = create_engine(url)
    await upgrade(engine)
    async with transaction(session_factory(engine)) as session:
        outcome = await import_file(session, SAMPLE)
        conference = await repository.get_by_slug(session, outcome.conference.slug)
        for forum in conference.forums:
            forum.capacity = people
        rows = generate(people, [forum.key for forum in conference.forums], seed=1)
        await importing.import_rows(
            session, conference, list(enumerate(rows, 2)), skip_invalid=False
        )
        await assignment.run_assignment(session, conference)
    await engine.dispose()


async def queue_all(url: str, chunk: int) -> int:
    """Render and queue everyone's invitation chunk by chunk, as `invites send` and the API do."""
    engine = create_engine(url)
    invited, changes = await invite_everyone(
        session_factory(engine),
        "ik-heinsberg-2027",
        base_url="https://konferenz.example.org",
        message_domain=message_domain(FROM),
        sender=FROM,
        clock=system_clock,
        chunk=chunk,
    )
    await engine.dispose()
    return invited.queued + changes.queued


async def count_sent(url: str) -> int:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        statement = select(func.count()).where(OutboxMessage.state == OutboxState.SENT)
        sent = (await session.execute(statement)).scalar_one()
    await engine.dispose()
    return sent


async def stored_bodies(url: str) -> list[tuple[str, bytes]]:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        rows = await session.execute(select(OutboxMessage.recipient, OutboxMessage.body))
        bodies = [(recipient, body) for recipient, body in rows]
    await engine.dispose()
    return bodies


@dataclass(frozen=True)
class Pipeline:
    seconds: float  # from the first rendering to the last message marked sent
    queued: int
    render_cpu: float  # this process: render and queue
    sender_cpu: float  # the worker process: claim, send, record


async def pipeline(url: str, port: int, args: argparse.Namespace) -> Pipeline:
    """Queue everything here while a worker process delivers it; time the whole."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, HOST, str(port), FROM, str(args.concurrency)],
        stdin=subprocess.PIPE,
        env={**os.environ, "ORCH_ENV_FILE": "/nonexistent"},
    )
    started, cpu = time.perf_counter(), time.process_time()
    queued = await queue_all(url, args.chunk)
    render_cpu = time.process_time() - cpu
    while await count_sent(url) < queued:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    assert worker.stdin is not None
    worker.stdin.write(b"stop\n")
    worker.stdin.close()
    worker.wait(timeout=30)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Pipeline(elapsed, queued, render_cpu, children.ru_utime + children.ru_stime)


async def main(args: argparse.Namespace) -> None:
    with sink_server() as port:
        async with scratch_database(args.database_url) as url:
            await setup(url, args.people)
            run = await pipeline(url, port, args)
            bodies = await stored_bodies(url)
        elapsed, queued = run.seconds, run.queued
        size = sum(len(body) for _, body in bodies) / len(bodies)
        bare_started = time.perf_counter()
        await bare_loop(port, bodies)
        bare = len(bodies) / (time.perf_counter() - bare_started)
        ours = queued / elapsed
        print(f"{queued} invitations, {size / 1024:.1f} KB each on average")
        print(f"{'pipeline (render + queue + deliver)':<40} {ours:8.0f} msgs/s  {elapsed:6.1f} s")
        print(f"{'bare aiosmtplib loop (pre-rendered)':<40} {bare:8.0f} msgs/s")
        print(f"ratio: {ours / bare:.0%} (bar: >= 50 %)")
        render_ms, sender_ms = run.render_cpu * 1000 / queued, run.sender_cpu * 1000 / queued
        print(f"CPU per message: render + queue {render_ms:.2f} ms, sender {sender_ms:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
