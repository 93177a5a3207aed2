"""The organiser's people list at 5,000 people against a bare endpoint (SPEC §6: p95 ≤ 3×).

    .venv/bin/python bench/people_list.py [--people 5000] [--requests 300]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The app is `create_app(settings)` plus, in this bench's instance only, a bare route
`/bench/bare` returning a fixed small HTML page, and an ASGI middleware that records the
server time of every request (from the request reaching the app to the last byte of the
answer). Served by uvicorn in this process; one signed-in organiser (a real session cookie)
asks over real HTTP, one request at a time, so each server time is undisturbed by the others:
the bare page, the list's first page, and a filtered search (a name and a forum), in turn,
after a warm-up. Printed: p50/p95 server time per target, client latency, and the ratios.
The people are the demo generator's (`orchestrator.demo.people.generate`), balanced into
forums, half of them invited.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.common import SAMPLE, add_database_url, percentile, scratch_database
from bench.join_burst import serving
from orchestrator.accounts import passwords
from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffRole
from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.service import import_spec, parse_spec_file
from orchestrator.config import Settings, prepare
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.demo.people import generate
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.importing import import_rows
from orchestrator.participants.models import Person
from orchestrator.schema import upgrade
from orchestrator.web.app import create_app
from orchestrator.web.deps import ConferenceBySlug
from orchestrator.web.staff.auth import (
    StaffRoute,
    StaffSession,
    require_organiser,
    require_staff_session,
)
from orchestrator.web.staff.workspace import workspace_page

ORGANISER, PASSWORD = "bench@example.org", "bench password, long enough"
BARE_HTML = "<!doctype html><html lang=de><title>bare</title><p>bare</p></html>"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="People list vs a bare endpoint (server time).")
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per target")
    add_database_url(parser)
    return parser.parse_args()


@dataclass
class Recorder:
    """Server times by target label, kept while `recording`."""

    labels: dict[str, str]
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    recording: bool = False


class ServerTimes:
    """ASGI middleware: the time from a request reaching the app to its answer's last byte."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app, self.recorder = app, recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        if scope["type"] != "http" or not self.recorder.recording:
            return
        label = self.recorder.labels.get(scope["path"] + "?" + scope["query_string"].decode())
        if label:
            self.recorder.times[label].append(time.perf_counter() - started)


async def load(url: str, people: int) -> tuple[str, str]:
    """The demo conference with `people` invitees, balanced, half invited, and an organiser.
    Returns the slug and a filtered search's query string."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with transaction(session_factory(engine)) as session:
            conference = (await import_spec(session, parse_spec_file(SAMPLE))).conference
            await session.flush()
            conference = await get_by_slug(session, conference.slug)
            keys = [forum.key for forum in conference.forums]
            rows = generate(people, keys, seed=1)
            await import_rows(session, conference, list(enumerate(rows, 2)), skip_invalid=False)
            await run_assignment(session, conference)
            await _invite_half(session, conference.id)
            user = await accounts.add_user(session, ORGANISER, StaffRole.ORGANISER, _now())
            user.password_hash = passwords.hash_password(PASSWORD)
            slug = conference.slug
        return slug, f"q={quote('muller')}&forum={keys[0]}"
    finally:
        await engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


async def _invite_half(session: AsyncSession, conference_id: int) -> None:
    ids = list(await session.scalars(Person.__table__.select().with_only_columns(Person.id)))
    chosen = ids[::2]
    for start in range(0, len(chosen), 500):
        await session.execute(
            update(Person)
            .where(Person.id.in_(chosen[start : start + 500]))
            .values(invited_at=_now())
        )


def _staff_frame() -> APIRouter:
    """`/bench/{slug}/frame`: what every workspace page costs before its own work (session,
    organiser check, the conference, the frame rendered), with an empty main region."""
    router = APIRouter(
        prefix="/bench/{slug}",
        route_class=StaffRoute,
        dependencies=[Depends(require_staff_session), Depends(require_organiser)],
    )

    @router.get("/frame")
    async def frame(
        request: Request,
        staff: Annotated[StaffSession, Depends(require_organiser)],
        conference: ConferenceBySlug,
    ) -> HTMLResponse:
        return workspace_page(
            request, "staff/_base.html", staff, conference=conference, section="people"
        )

    return router


def bench_app(settings: Settings, recorder: Recorder) -> FastAPI:
    """The production app plus the bare route and the timing middleware (this instance only)."""
    app = create_app(settings)

    async def bare() -> HTMLResponse:
        return HTMLResponse(BARE_HTML)

    app.add_api_route("/bench/bare", bare, methods=["GET"], include_in_schema=False)
    app.include_router(_staff_frame())
    app.add_middleware(ServerTimes, recorder=recorder)
    return app


async def sign_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/admin/login")
    token = _CSRF.search(form.text)
    assert token, form.text[:300]
    data = {"email": ORGANISER, "password": PASSWORD, "csrf_token": token.group(1), "next": ""}
    answer = await client.post("/admin/login", data=data)
    assert answer.status_code == 303, answer.text[:300]


async def measure(
    client: httpx.AsyncClient, targets: dict[str, str], timer: Recorder, requests: int
) -> dict[str, list[float]]:
    """Warm up, then ask each target in turn; client latency per target."""
    latency: dict[str, list[float]] = defaultdict(list)
    for recording, rounds in ((False, 20), (True, requests)):
        timer.recording = recording
        for _ in range(rounds):
            for label, path in targets.items():
                started = time.perf_counter()
                answer = await client.get(path)
                if recording:
                    latency[label].append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
    return latency


def report(backend: str, args: argparse.Namespace, timer: Recorder, latency: Any) -> None:
    print(f"backend {backend}, {args.people} people, {args.requests} requests per target")
    columns = ("server p50", "server p95", "client p50", "client p95")
    print(f"{'target':<32} " + " ".join(f"{column:>11}" for column in columns))
    for label in ("bare", "staff frame", "first page", "filtered search"):
        server, client = timer.times[label], latency[label]
        print(
            f"{label:<32} {percentile(server, 0.5):>9.2f}ms {percentile(server, 0.95):>9.2f}ms "
            f"{percentile(client, 0.5):>9.2f}ms {percentile(client, 0.95):>9.2f}ms"
        )
    for base in ("bare", "staff frame"):
        bare = percentile(timer.times[base], 0.95)
        for label in ("first page", "filtered search"):
            ratio = percentile(timer.times[label], 0.95) / bare
            verdict = "meets" if ratio <= 3 else "MISSES"
            print(f"p95 server time {label} / {base}: {ratio:.1f}x ({verdict} the bar of 3x)")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-people-") as name:
        directory = Path(name)
        async with scratch_database(args.database_url, directory) as url:
            slug, filtered = await load(url, args.people)
            people = f"/admin/{slug}/people"
            targets = {
                "bare": "/bench/bare?",
                "staff frame": f"/bench/{slug}/frame?",
                "first page": f"{people}?",
                "filtered search": f"{people}?{filtered}",
            }
            labels = {path: label for label, path in targets.items()}
            settings = prepare(
                Settings(_env_file=None, data_dir=directory / "data", database_url=url)
            )
            timer = Recorder(labels)
            async with (
                serving(bench_app(settings, timer)) as base_url,
                httpx.AsyncClient(base_url=base_url, timeout=60) as client,
            ):
                await sign_in(client)
                latency = await measure(
                    client, {k: v.rstrip("?") for k, v in targets.items()}, timer, args.requests
                )
            report(make_url(url).get_backend_name(), args, timer, latency)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
