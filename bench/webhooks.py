"""event_sync webhooks in a burst against a bare JSON endpoint on the same server (SPEC §6).

    .venv/bin/python bench/webhooks.py [--people 500] [--events 10000] [--concurrency 50]
        [--rounds 3] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The server is `create_app(settings)` with the event intake (writer and folder) plus a bare
route `/bench/bare` that parses the JSON body and answers 200, served by uvicorn in this
process. The load comes from a separate process (this script with `--client`): `--concurrency`
clients with one keep-alive connection each post `--events` occupant events per target and
round, exactly as event_sync builds them: `--people` people join the plenary, leave, join one
of the 5 forums, leave, join the plenary again, and so on, everyone moving at once. Each round
sends new events; the bare endpoint gets the same bodies. Afterwards every acknowledged event
must be a row in jitsi_events ("lost: 0"), and the folder must have folded them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import httpx
from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.common import SAMPLE, add_database_url, load_client, percentile, scratch_database
from bench.join_burst import serving
from orchestrator.attendance.models import JitsiEvent, PresenceInterval
from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.service import import_file, plenary_room
from orchestrator.config import Settings, prepare
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.jitsi.events import digest
from orchestrator.participants.models import Person
from orchestrator.schema import upgrade
from orchestrator.web.app import create_app
from tests.event_sync import PATHS, Room, new_jid, user

START = 1_805_360_400  # 2027-03-18 09:00 UTC
STEPS_PER_ROUND_SECONDS = 86_400  # each round replays the day a day later: new events


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="event_sync webhooks vs a bare JSON endpoint.")
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--events", type=int, default=10_000, help="per target and round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="the median round is reported")
    add_database_url(parser)
    parser.add_argument("--client", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the load generator (runs in its own process) ---------------------------------------


class Job(TypedDict, total=False):
    """What the load process needs, written to a file for it."""

    people: list[str]  # person ids: context.user.id in the events
    plenary: str
    forums: list[str]
    events: int
    concurrency: int
    secret: str
    base_url: str


def day_of_moves(job: Job, round_number: int) -> list[dict[str, Any]]:
    """`events` occupant events: everyone to the plenary, out, into a forum, out, and again."""
    base = START + round_number * STEPS_PER_ROUND_SECONDS
    plenary, forums = Room(job["plenary"], base), [Room(name, base) for name in job["forums"]]
    events: list[dict[str, Any]] = []
    step = 0
    while len(events) < job["events"]:
        moves = [(person, new_jid(), n) for n, person in enumerate(job["people"])]
        target = [plenary if step % 2 == 0 else forums[n % len(forums)] for _, _, n in moves]
        at = base + step * 600
        for (person, jid, n), room in zip(moves, target, strict=True):
            events.append(room.join(jid, at + n % 60, user(person, f"Person {n}")))
        for (_, jid, n), room in zip(moves, target, strict=True):
            events.append(room.leave(jid, at + 300 + n % 60))
        step += 1
    return events[: job["events"]]


@dataclass
class Stats:
    target: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    acknowledged: list[str] = field(default_factory=list)  # digests answered 200
    server_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


async def _burst(
    clients: list[httpx.AsyncClient], target: str, bodies: list[tuple[str, bytes, str]]
) -> Stats:
    latencies: list[float] = []
    acknowledged: list[str] = []
    errors = 0
    work = iter(bodies)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for path, body, event_digest in work:
            started = time.perf_counter()
            try:
                response = await client.post(
                    path if target == "events" else "/bench/bare", content=body
                )
            except httpx.TransportError as error:
                print(f"transport error: {error!r}", file=sys.stderr)
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors += 1
            elif target == "events":
                acknowledged.append(event_digest)

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    seconds = time.perf_counter() - started
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return Stats(target, len(bodies), seconds, errors, p50, p99, acknowledged)


def _bodies(job: Job, round_number: int) -> list[tuple[str, bytes, str]]:
    return [
        ("/jitsi" + PATHS[str(event["event_name"])], json.dumps(event).encode(), digest(event))
        for event in day_of_moves(job, round_number)
    ]


async def drive(job_file: Path) -> None:
    """Answer burst commands from stdin (one JSON line each) with one JSON line of Stats."""
    job = json.loads(job_file.read_text(encoding="utf-8"))
    headers = {"Authorization": f"Bearer {job['secret']}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(
            base_url=job["base_url"], headers=headers, limits=limits, timeout=60, verify=False
        )
        for _ in range(job["concurrency"])
    ]
    try:
        while command := json.loads(await asyncio.to_thread(sys.stdin.readline) or "null"):
            bodies = _bodies(job, command["round"])
            stats = await _burst(clients, command["target"], bodies)
            print(json.dumps(asdict(stats)), flush=True)
    finally:
        for client in clients:
            await client.aclose()


# --- the server side: data, app, uvicorn -------------------------------------------------


async def load_people(url: str, people: int) -> Job:
    """The demo conference and `people` people; their ids and the room names."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with transaction(session_factory(engine)) as session:
            imported = (await import_file(session, SAMPLE)).conference
            await session.flush()
            conference = await get_by_slug(session, imported.slug)
            ids = [
                Person(conference_id=conference.id, email=f"p{n}@example.org")
                for n in range(people)
            ]
            session.add_all(ids)
            await session.flush()
            plenary = plenary_room(conference.sessions[0])
            assert plenary is not None
            forums = [forum.room.name for forum in conference.forums if forum.room is not None]
            return {"people": [str(p.id) for p in ids], "plenary": plenary.name, "forums": forums}
    finally:
        await engine.dispose()


def bench_app(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"attendance_census_seconds": None}))

    async def bare(request: Request) -> Response:
        await request.json()
        return Response(b'{"status":"stored"}', media_type="application/json")

    app.add_api_route("/bench/bare", bare, methods=["POST"], include_in_schema=False)
    return app


def plan(rounds: int) -> list[tuple[str, int, bool]]:
    """Warm-up (round 0, not reported), then bare and events alternating, new events each."""
    steps = [("bare", 0, False), ("events", 0, False)]
    for number in range(1, rounds + 1):
        steps += [("bare", number, True), ("events", number, True)]
    return steps


async def _command(process: asyncio.subprocess.Process, target: str, number: int) -> Stats:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps({"target": target, "round": number}).encode() + b"\n")
    await process.stdin.drain()
    cpu = time.process_time()
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the load client stopped")
    stats = Stats(**json.loads(line))
    stats.server_cpu_s = time.process_time() - cpu
    return stats


async def run_client(job: Job, rounds: int, directory: Path) -> list[tuple[Stats, bool]]:
    """Start the load process, run the plan burst by burst, measuring this process's CPU."""
    results: list[tuple[Stats, bool]] = []
    # a line of Stats carries every acknowledged digest: a large line limit
    async with load_client(__file__, job, directory, limit=2**26) as process:
        for target, number, measured in plan(rounds):
            results.append((await _command(process, target, number), measured))
    return results


# --- checks and report ----------------------------------------------------------------------


@dataclass
class Outcome:
    stored: int
    missing: int  # acknowledged but not in jitsi_events
    pending: int  # stored but not folded when we stopped waiting
    intervals: int
    fold_wait_s: float


async def verify(url: str, acknowledged: set[str], seconds: float = 120) -> Outcome:
    """Every acknowledged event stored; wait (bounded) for the folder to fold them all."""
    engine = create_engine(url)
    started = time.monotonic()
    try:
        sessions = session_factory(engine)
        while True:
            async with sessions() as session:
                pending = await session.scalar(
                    select(func.count()).where(JitsiEvent.processed.is_(False))
                )
            if not pending or time.monotonic() - started > seconds:
                break
            await asyncio.sleep(0.2)
        waited = time.monotonic() - started
        async with sessions() as session:
            stored = set(await session.scalars(select(JitsiEvent.digest)))
            intervals = await session.scalar(select(func.count()).select_from(PresenceInterval))
        return Outcome(
            len(stored), len(acknowledged - stored), int(pending or 0), int(intervals or 0), waited
        )
    finally:
        await engine.dispose()


def _median(results: list[tuple[Stats, bool]], target: str) -> Stats:
    rounds = sorted(
        (s for s, measured in results if measured and s.target == target), key=lambda s: s.rate
    )
    return rounds[len(rounds) // 2]


def report(
    backend: str,
    args: argparse.Namespace,
    results: list[tuple[Stats, bool]],
    outcome: Outcome,
    acknowledged: int,
) -> None:
    bare, events = _median(results, "bare"), _median(results, "events")
    print(
        f"backend {backend}, {args.people} people, {args.concurrency} concurrent clients, "
        f"{args.events} events per target and round, median of {args.rounds} rounds"
    )
    print(
        f"{'target':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU us/req':>18}"
    )
    for label, stats in (("bare JSON 200", bare), ("/jitsi/events/occupant/*", events)):
        cpu = stats.server_cpu_s / stats.requests * 1e6
        print(
            f"{label:<30} {stats.rate:>8.0f} {stats.p50_ms:>8.1f} {stats.p99_ms:>8.1f} "
            f"{stats.errors:>7} {cpu:>18.0f}"
        )
    print(
        "all rounds (req/s): "
        + ", ".join(f"{s.target} {s.rate:.0f}" for s, measured in results if measured)
    )
    ratio = events.rate / bare.rate
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"throughput ratio events/bare: {ratio:.1%} ({verdict} the SPEC §6 bar of 50 %)")
    print(
        f"acknowledged {acknowledged}, stored {outcome.stored}, lost: {outcome.missing}; "
        f"folded into {outcome.intervals} intervals, {outcome.pending} events still pending "
        f"{outcome.fold_wait_s:.1f} s after the last burst"
    )


async def bench(args: argparse.Namespace, url: str, directory: Path) -> int:
    job = await load_people(url, args.people)
    settings = prepare(Settings(_env_file=None, data_dir=directory / "data", database_url=url))
    job |= {
        "events": args.events,
        "concurrency": args.concurrency,
        "secret": settings.require("jitsi_webhook_secret"),
    }
    async with serving(bench_app(settings)) as base_url:
        results = await run_client({**job, "base_url": base_url}, args.rounds, directory)
        acknowledged = {d for s, _ in results if s.target == "events" for d in s.acknowledged}
        outcome = await verify(url, acknowledged)
    report(make_url(url).get_backend_name(), args, results, outcome, len(acknowledged))
    errors = sum(s.errors for s, _ in results)
    return 1 if outcome.missing or errors else 0


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as name:
        directory = Path(name)
        async with scratch_database(args.database_url, directory) as url:
            return await bench(args, url, directory)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.client is not None:
        asyncio.run(drive(arguments.client))
    else:
        sys.exit(asyncio.run(main(arguments)))
