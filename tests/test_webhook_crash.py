"""Kill -9 the server during a burst of 2,000 event_sync events; no acknowledged event is lost.

The app runs in a uvicorn process of its own. The sender behaves like event_sync with its
defaults (3 retries 1 s apart on >= 500 or no answer, then the event is dropped). When 600
events are acknowledged the server gets SIGKILL and a new one starts on the same port; the
senders' retries carry on. Every event answered 2xx must then be in jitsi_events, and the
new server folds everything, including what the killed one had stored but not folded.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.models import JitsiEvent
from orchestrator.jitsi.events import digest
from tests.event_sync import (
    Delivery,
    EventSync,
    Payload,
    Room,
    at,
    eventually,
    new_jid,
    stored_digests,
    user,
)
from tests.processes import LoggedProcess

TOTAL = 2000
KILL_AFTER = 600  # acknowledged events
CONCURRENCY = 50
ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import sys

import uvicorn

from orchestrator import logs
from orchestrator.config import get_settings
from orchestrator.web.app import create_app

logs.configure("WARNING")
app = create_app(get_settings().model_copy(update={"attendance_census_seconds": None}))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess(LoggedProcess):
    """The app under uvicorn in a process of its own, output in a log file."""

    def __init__(self, directory: Path, name: str, port: int, env: dict[str, str]) -> None:
        script = directory / "webhook_server.py"
        script.write_text(SERVER, encoding="utf-8")
        self.url = f"http://127.0.0.1:{port}"
        args = [sys.executable, str(script), str(port)]
        super().__init__(args, directory / f"{name}.log", env, cwd=ROOT)

    async def ready(self, seconds: float = 20.0) -> None:
        """Wait until /healthz answers 200."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                assert self.process.poll() is None, f"server exited:\n{self.tail()}"
                assert time.monotonic() < deadline, f"server not ready:\n{self.tail()}"
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)


def burst() -> list[Payload]:
    """2,000 occupant events: 200 people, each in and out of 5 rooms."""
    rooms = [Room(f"crash-room-{n}", at("10:00:00")) for n in range(5)]
    events: list[Payload] = []
    for person in range(200):
        context = user(f"person-{person}", f"Person {person}")
        for number, room in enumerate(rooms):
            jid = new_jid()
            events.append(room.join(jid, at("10:00:00") + 60 * number, context))
            events.append(room.leave(jid, at("10:00:50") + 60 * number))
    return events


def environment(database_url: str, tmp_path: Path, secret: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "ORCH_ENV_FILE": "/nonexistent",
        "ORCH_DATA_DIR": str(tmp_path / "data"),
        "ORCH_DATABASE_URL": database_url,
        "ORCH_JITSI_WEBHOOK_SECRET": secret,
    }


async def unprocessed(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        statement = select(func.count()).where(JitsiEvent.processed.is_(False))
        return int(await session.scalar(statement) or 0)


@dataclass
class Outcome:
    deliveries: list[Delivery]
    acknowledged_at_kill: int
    restart_seconds: float


async def burst_through_a_kill(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, env: dict[str, str], port: int
) -> Outcome:
    """Send the burst, SIGKILL the server mid-way, restart it; wait until all is folded."""
    first = ServerProcess(tmp_path, "first", port, env)
    second: ServerProcess | None = None
    try:
        await first.ready()
        secret = env["ORCH_JITSI_WEBHOOK_SECRET"]
        async with EventSync(f"{first.url}/jitsi", secret, retry_delay=1.0, timeout=10) as sync:
            sending = asyncio.create_task(sync.send_all(burst(), CONCURRENCY))
            try:
                await eventually(lambda: _count(sync), lambda n: n >= KILL_AFTER, 30)
                first.kill()
                at_kill, killed = sync.acknowledged, time.monotonic()
                second = ServerProcess(tmp_path, "second", port, env)
                await second.ready()
                restart = time.monotonic() - killed
                deliveries = await asyncio.wait_for(sending, 60)
            finally:
                sending.cancel()
        await eventually(lambda: unprocessed(sessions), lambda n: n == 0, 30)
        return Outcome(deliveries, at_kill, restart)
    finally:
        if first.process.poll() is None:
            first.kill()
        if second is not None:
            # SIGTERM: uvicorn shuts down cleanly and then re-raises the signal (-15).
            assert second.stop() in (0, -signal.SIGTERM), second.tail()


async def _count(sync: EventSync) -> int:
    return sync.acknowledged


@pytest.mark.asyncio
async def test_killed_server_loses_no_acknowledged_event(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url, tmp_path, secrets.token_urlsafe(32))
    outcome = await burst_through_a_kill(sessions, tmp_path, env, free_port())
    deliveries = outcome.deliveries
    acknowledged = {digest(d.payload) for d in deliveries if d.acknowledged}
    stored = await stored_digests(sessions)
    met_the_kill = sum(1 for d in deliveries if d.errors)
    dropped = [d for d in deliveries if not d.acknowledged]
    print(
        f"\ncrash test ({database_url.split(':')[0]}): {TOTAL} events, SIGKILL after "
        f"{outcome.acknowledged_at_kill} acknowledged, up again after "
        f"{outcome.restart_seconds:.1f} s; {met_the_kill} requests met the dead server and "
        f"were retried; {len(acknowledged)} acknowledged, {len(stored)} rows, "
        f"{len(dropped)} dropped after all retries (never acknowledged), "
        f"{len(acknowledged - stored)} acknowledged but missing"
    )
    assert len(deliveries) == TOTAL and outcome.acknowledged_at_kill < TOTAL
    assert met_the_kill > 0, "the kill did not meet a request in flight"
    assert acknowledged <= stored, f"lost: {len(acknowledged - stored)} acknowledged events"
    assert stored <= {digest(d.payload) for d in deliveries}  # one row per event, no strays
    assert all(d.status is None for d in dropped), [d.status for d in dropped]
