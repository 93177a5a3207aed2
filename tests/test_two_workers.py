"""Two `orchestrator worker` processes on one PostgreSQL database and a real SMTP server.

One takes the advisory lock and sends each reminder exactly once while the other waits;
when the holder is killed (SIGKILL: no cleanup at all), the other takes over and sends
what falls due next, again exactly once. Reminders are planned from the real clock, a few
seconds before their 15-minute reminder falls due.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.service import import_file
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants import service as people
from orchestrator.participants.models import AttendanceMode, Rsvp
from orchestrator.participants.schemas import PersonIn
from orchestrator.scheduling.planning import replan
from tests.conftest import SAMPLE_TOML
from tests.processes import LoggedProcess
from tests.smtp_server import FROM, SmtpServer, smtp_server_fixture

__all__ = ["smtp_server_fixture"]

ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
SWEEP, POLL = 1.0, 0.5  # seconds: the workers' sweep interval and lock poll
PEOPLE = 5
Sessions = async_sessionmaker[AsyncSession]


class Worker(LoggedProcess):
    """`orchestrator worker` in a process of its own, its log in a file."""

    def __init__(self, name: str, directory: Path, env: dict[str, str]) -> None:
        self.name = name
        env = env | {"ORCH_DATA_DIR": str(directory / name)}
        super().__init__([str(ORCHESTRATOR), "worker"], directory / f"{name}.log", env)

    def logged(self, event: str) -> bool:
        return f" {event}" in self.output()


def _env(database_url: str, server: SmtpServer) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
    return env | {
        "ORCH_ENV_FILE": "/nonexistent",
        "ORCH_DATABASE_URL": database_url,
        "ORCH_SMTP_HOST": server.host,
        "ORCH_SMTP_PORT": str(server.port),
        "ORCH_MAIL_FROM": f"Konferenz <{FROM}>",
        "ORCH_BASE_URL": "http://orchestrator.test",
        "ORCH_LOG_LEVEL": "INFO",
        "ORCH_WORKER_SWEEP_SECONDS": str(SWEEP),
        "ORCH_WORKER_LOCK_POLL_SECONDS": str(POLL),
    }


async def _plan(session: AsyncSession, directory: Path, slug: str, lead: float) -> datetime:
    """A conference whose PT15M reminders fall due `lead` seconds from now; returns when."""
    path = directory / f"{slug}.toml"
    text = SAMPLE_TOML.read_text(encoding="utf-8").replace('"ik-heinsberg-2027"', f'"{slug}"')
    path.write_text(text, encoding="utf-8")
    await import_file(session, path)
    conference = await get_by_slug(session, slug)
    conference.reminder_offsets = ["PT15M"]
    now = datetime.now(UTC)
    due = now + timedelta(seconds=lead)
    shift = due + timedelta(minutes=15) - min(item.starts_at for item in conference.sessions)
    for item in conference.sessions:
        item.starts_at, item.ends_at = item.starts_at + shift, item.ends_at + shift
    for number in range(PEOPLE):
        data = PersonIn(email=f"{slug}-{number}@example.org", first_name=f"Person {number}",
                        attendance_mode=AttendanceMode.IN_PERSON, consent=True)  # fmt: skip
        person = await people.create(session, conference, data)
        person.rsvp, person.invited_at = Rsvp.ACCEPTED, now
    await replan(session, conference, now)  # only what is still ahead: due soon, the PT15M
    await session.commit()
    return due


async def _sent(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        statement = select(OutboxMessage).where(OutboxMessage.state == OutboxState.SENT)
        return list(await session.scalars(statement))


async def _wait(condition: Callable[[], bool], timeout: float, workers: list[Worker]) -> float:
    """Poll until the condition holds; returns the seconds it took (fails at `timeout`)."""
    started = time.monotonic()
    while not condition():
        logs = "\n".join(f"--- {w.name}:\n{w.tail()}" for w in workers)
        assert time.monotonic() - started < timeout, f"timed out\n{logs}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _delivered(sessions: Sessions, count: int, timeout: float) -> list[OutboxMessage]:
    deadline = time.monotonic() + timeout
    while len(sent := await _sent(sessions)) < count:
        assert time.monotonic() < deadline, f"only {len(sent)} of {count} marked sent"
        await asyncio.sleep(0.05)
    return sent


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.asyncio
async def test_one_worker_sends_the_other_takes_over_when_it_dies(
    session: AsyncSession,
    sessions: Sessions,
    database_url: str,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    arrived = smtp_server.handler
    await _plan(session, tmp_path, "first", lead=5)
    env = _env(database_url, smtp_server)
    workers = [Worker(name, tmp_path, env) for name in ("one", "two")]
    try:
        await _wait(lambda: all(w.logged("worker.started") for w in workers), 15, workers)
        await _wait(lambda: arrived.count >= PEOPLE, 20, workers)
        first = await _delivered(sessions, PEOPLE, timeout=10)
        (holder,) = [w for w in workers if w.logged("worker.lock_held")]
        (other,) = [w for w in workers if w is not holder]
        assert other.logged("worker.waiting_for_lock") and not other.logged("mail.sender_started")

        holder.kill()
        takeover = await _wait(lambda: other.logged("worker.lock_held"), SWEEP + POLL, workers)
        await _plan(session, tmp_path, "second", lead=2)
        await _wait(lambda: arrived.count >= 2 * PEOPLE, 2 + SWEEP + 10, workers)
        sent = await _delivered(sessions, 2 * PEOPLE, timeout=10)
        await asyncio.sleep(SWEEP + 0.5)  # time enough for a duplicate to show
    finally:
        codes = [w.stop() for w in workers]
    print(f"two workers: takeover {takeover:.2f} s after SIGKILL (sweep {SWEEP} s, poll {POLL} s)")
    assert codes[workers.index(other)] == 0, other.output()
    assert arrived.message_ids() == Counter(row.message_id for row in sent)
    assert set(arrived.message_ids().values()) == {1} and len(first) == PEOPLE
    assert {row.kind for row in sent} == {"reminder"}
