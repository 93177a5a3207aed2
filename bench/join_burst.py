"""Join-link redirects under 200 concurrent clients against a bare fixed 302 (SPEC §6).

    .venv/bin/python bench/join_burst.py [--people 2000] [--requests 10000]
        [--concurrency 200] [--rounds 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The app is `create_app(settings)` plus a bare route `/bench/bare` that returns a fixed 302,
served by uvicorn in this process. The load comes from a separate process (this script with
`--client`): `--concurrency` clients, each an httpx.AsyncClient with one keep-alive
connection, sending `--requests` requests per target and round; each /j/ request is for one
of `--people` distinct people, into their own forum. Bare and join bursts alternate after a
warm-up; the median round of each is reported, with p50/p99 latency and the CPU time this
(server) process spent per request, which does not depend on how fast the client is.
The conference is the demo conference moved to today, every session spanning the whole day,
so the real clock lies inside every window. Without --database-url it uses a fresh SQLite
file; with a PostgreSQL URL it creates (and drops) a scratch database on that server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bench.common import SAMPLE, add_database_url, load_client, percentile, scratch_database
from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.schemas import ConferenceSpec
from orchestrator.conferences.service import import_spec, parse_spec_file
from orchestrator.config import Settings, prepare
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.demo.people import generate
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.importing import import_rows
from orchestrator.participants.models import Assignment, Person
from orchestrator.rooms.models import JoinClick, Room
from orchestrator.schema import upgrade
from orchestrator.web.app import create_app

BARE_TARGET = "https://meet.example.org/bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Join-link redirects vs a bare fixed 302.")
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=10_000, help="per target and round")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="the median round is reported")
    add_database_url(parser)
    parser.add_argument("--client", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the load generator (runs in its own process) ---------------------------------------


@dataclass
class Stats:
    target: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    server_cpu_s: float = 0.0  # CPU time the server process spent during the burst

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6


@dataclass
class _Burst:
    paths: list[str]
    total: int
    issued: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def next_path(self) -> str | None:
        if self.issued >= self.total:
            return None
        self.issued += 1
        return self.paths[self.issued % len(self.paths)]


async def _visitor(client: httpx.AsyncClient, burst: _Burst) -> None:
    while (path := burst.next_path()) is not None:
        started = time.perf_counter()
        try:
            response = await client.get(path)
        except httpx.TransportError as error:
            print(f"transport error: {error!r}", file=sys.stderr)
            burst.errors += 1
            continue
        burst.latencies.append(time.perf_counter() - started)
        if response.status_code != 302:
            burst.errors += 1


async def _run_burst(
    clients: list[httpx.AsyncClient], target: str, paths: list[str], n: int
) -> Stats:
    burst = _Burst(paths, n)
    started = time.perf_counter()
    await asyncio.gather(*(_visitor(client, burst) for client in clients))
    seconds = time.perf_counter() - started
    p50, p99 = percentile(burst.latencies, 0.50), percentile(burst.latencies, 0.99)
    return Stats(target, n, seconds, burst.errors, p50, p99)


async def drive(job_file: Path) -> None:
    """Answer burst commands from stdin (one JSON line each) with one JSON line of Stats.

    Every concurrent client is its own httpx.AsyncClient with one keep-alive connection, as
    200 browsers would be: one shared pool of 200 connections spends its time in the pool's
    bookkeeping (httpcore), and then measures the client instead of the server.
    """
    job = json.loads(job_file.read_text(encoding="utf-8"))
    targets = {"bare": ["/bench/bare"], "join": job["paths"]}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=job["base_url"], limits=limits, timeout=60)
        for _ in range(job["concurrency"])
    ]
    try:
        while command := json.loads(await asyncio.to_thread(sys.stdin.readline) or "null"):
            stats = await _run_burst(
                clients, command["target"], targets[command["target"]], command["requests"]
            )
            print(json.dumps(asdict(stats)), flush=True)
    finally:
        for client in clients:
            await client.aclose()


# --- the server side: data, app, uvicorn -------------------------------------------------


def todays_spec(people: int) -> ConferenceSpec:
    """The demo conference today, every session all day, every forum big enough for all."""
    spec = parse_spec_file(SAMPLE)
    today = datetime.now(ZoneInfo(spec.conference.timezone)).date()
    whole_day = {"start": clock_time(0, 0), "end": clock_time(23, 59), "date": None}
    return spec.model_copy(
        update={
            "conference": spec.conference.model_copy(update={"date": today}),
            "sessions": [item.model_copy(update=whole_day) for item in spec.sessions],
            "forums": [item.model_copy(update={"capacity": people}) for item in spec.forums],
        }
    )


async def load_people(session: AsyncSession, people: int) -> list[str]:
    """Import `people` demo invitees, balance them, return their /j/ paths (own forum)."""
    conference = (await import_spec(session, todays_spec(people))).conference
    await session.flush()
    conference = await get_by_slug(session, conference.slug)
    rows = generate(people, [forum.key for forum in conference.forums], seed=1)
    await import_rows(session, conference, list(enumerate(rows, start=2)), skip_invalid=False)
    await run_assignment(session, conference)
    statement = (
        select(Person.token, Room.name)
        .join(Assignment, Assignment.person_id == Person.id)
        .join(Room, Room.forum_id == Assignment.forum_id)
        .order_by(Person.email)
    )
    return [f"/j/{token}/{room}" for token, room in await session.execute(statement)]


def bench_app(settings: Settings) -> FastAPI:
    """The production app plus the bare fixed-302 route to compare against."""
    app = create_app(settings)

    async def bare() -> Response:
        return Response(status_code=302, headers={"Location": BARE_TARGET})

    app.add_api_route("/bench/bare", bare, methods=["GET"], include_in_schema=False)
    return app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=120,  # the client's connections stay open between bursts
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def plan(args: argparse.Namespace) -> list[tuple[str, int, bool]]:
    """Warm-up bursts (not reported), then bare and join alternating for each round."""
    warm_up = max(args.requests // 5, args.concurrency)
    steps = [("bare", warm_up, False), ("join", warm_up, False)]
    for _ in range(args.rounds):
        steps += [("bare", args.requests, True), ("join", args.requests, True)]
    return steps


async def _command(process: asyncio.subprocess.Process, target: str, requests: int) -> Stats:
    assert process.stdin is not None and process.stdout is not None
    cpu = time.process_time()
    process.stdin.write(json.dumps({"target": target, "requests": requests}).encode() + b"\n")
    await process.stdin.drain()
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the load client stopped")
    stats = Stats(**json.loads(line))
    stats.server_cpu_s = time.process_time() - cpu
    return stats


async def run_client(
    job: dict[str, object], args: argparse.Namespace, directory: Path
) -> list[Stats]:
    """Start the load process, run the plan burst by burst, measuring this process's CPU."""
    results: list[Stats] = []
    async with load_client(__file__, job, directory) as process:
        for target, requests, measured in plan(args):
            stats = await _command(process, target, requests)
            if measured:
                results.append(stats)
    return results


# --- report -------------------------------------------------------------------------------


def _median(results: list[Stats], target: str) -> Stats:
    rounds = sorted((s for s in results if s.target == target), key=lambda s: s.rate)
    return rounds[len(rounds) // 2]


def report(backend: str, args: argparse.Namespace, results: list[Stats], clicks: int) -> None:
    bare, join = _median(results, "bare"), _median(results, "join")
    print(
        f"backend {backend}, {args.people} people, {args.concurrency} concurrent clients, "
        f"{args.requests} requests per target and round, median of {args.rounds} rounds"
    )
    print(
        f"{'target':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU us/req':>18}"
    )
    for label, stats in (("bare fixed 302", bare), ("/j/{token}/{room}", join)):
        print(
            f"{label:<24} {stats.rate:>8.0f} {stats.p50_ms:>8.1f} {stats.p99_ms:>8.1f} "
            f"{stats.errors:>7} {stats.cpu_us_per_request:>18.0f}"
        )
    print("all rounds (req/s): " + ", ".join(f"{s.target} {s.rate:.0f}" for s in results))
    ratio = join.rate / bare.rate
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"throughput ratio join/bare: {ratio:.1%} ({verdict} the SPEC §6 bar of 50 %)")
    cost = bare.cpu_us_per_request / join.cpu_us_per_request
    print(f"server CPU per request, bare/join: {cost:.1%} (the ratio if the server were the limit)")
    sent = sum(s.requests for s in results if s.target == "join")
    print(f"join clicks recorded: {clicks} (measured join requests {sent}, plus the warm-up)")


async def count_clicks(url: str) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(JoinClick)) or 0)
    finally:
        await engine.dispose()


async def bench(args: argparse.Namespace, url: str, directory: Path) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with transaction(session_factory(engine)) as session:
            paths = await load_people(session, args.people)
        if len(paths) != args.people:
            raise RuntimeError(f"{len(paths)} of {args.people} people have a forum")
    finally:
        await engine.dispose()
    settings = prepare(Settings(_env_file=None, data_dir=directory / "data", database_url=url))
    job = {"paths": paths, "requests": args.requests, "concurrency": args.concurrency}
    async with serving(bench_app(settings)) as base_url:
        results = await run_client({**job, "base_url": base_url}, args, directory)
    report(make_url(url).get_backend_name(), args, results, await count_clicks(url))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-join-") as name:
        directory = Path(name)
        async with scratch_database(args.database_url, directory) as url:
            await bench(args, url, directory)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.client is not None:
        asyncio.run(drive(arguments.client))
    else:
        asyncio.run(main(arguments))
