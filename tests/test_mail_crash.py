"""Kill -9 a sender process halfway through 500 messages; a fresh one delivers the rest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.mail.models import OutboxState
from tests.smtp_server import Sessions, SmtpServer, outgoing, queue, rows

TOTAL = 500
CONCURRENCY = 5
ROOT = Path(__file__).resolve().parents[1]

SENDER = """
import asyncio, json, signal, sys
from datetime import timedelta

from orchestrator import logs
from orchestrator.config import Settings
from orchestrator.mail.sender import SenderOptions
from orchestrator.mail.worker import run_sender


async def main(config):
    logs.configure("WARNING")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    options = SenderOptions(
        concurrency=config["concurrency"],
        batch_size=50,
        lease=timedelta(seconds=config["lease"]),
        poll_interval=0.05,
    )
    settings = Settings(_env_file=None, **config["settings"])
    await run_sender(settings, stop_event=stop, options=options)


asyncio.run(main(json.loads(sys.argv[1])))
"""


class SenderProcess:
    """`orchestrator.mail.worker.run_sender` in a process of its own, output in a log file."""

    def __init__(self, directory: Path, name: str, config: dict[str, object]) -> None:
        script = directory / "sender_process.py"
        script.write_text(SENDER, encoding="utf-8")
        self.log = directory / f"{name}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("ORCH_")}
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, str(script), json.dumps(config)],
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL: no cleanup, no exception handler, no finally."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM: finish in-flight mail and exit; killed if it takes too long."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise


async def wait_for(
    condition: Callable[[], Awaitable[bool]], sender: SenderProcess, timeout: float
) -> None:
    """Poll the condition; fail with the sender's output if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert sender.alive(), f"sender exited early:\n{sender.output()}"
        assert time.monotonic() < deadline, f"timed out; sender output:\n{sender.output()}"
        await asyncio.sleep(0.005)


def config(
    database_url: str, server: SmtpServer, tmp_path: Path, lease: float
) -> dict[str, object]:
    settings = {
        "database_url": database_url,
        "data_dir": str(tmp_path / "data"),
        "smtp_host": server.host,
        "smtp_port": server.port,
        "mail_from": "Konferenz <noreply@kreis.example>",
    }
    return {"settings": settings, "concurrency": CONCURRENCY, "lease": lease}


@pytest.mark.asyncio
async def test_killed_sender_loses_nothing_and_resends_at_most_concurrency(
    sessions: Sessions, database_url: str, tmp_path: Path
) -> None:
    await queue(sessions, [outgoing(n) for n in range(TOTAL)], now=datetime.now(UTC))
    server = SmtpServer()
    server.handler.delay = 0.01  # the relay takes a moment per message, as real ones do
    server.up()
    try:

        async def half_arrived() -> bool:
            return server.handler.count >= TOTAL // 2 + 3  # not on a batch boundary

        async def all_sent() -> bool:
            states = Counter(row.state for row in await rows(sessions))
            return states[OutboxState.SENT] == TOTAL

        first = SenderProcess(tmp_path, "first", config(database_url, server, tmp_path, 600))
        try:
            await wait_for(half_arrived, first, timeout=30)
        finally:
            first.kill()
        at_kill = server.handler.count
        stranded = sum(row.state is OutboxState.SENDING for row in await rows(sessions))

        second = SenderProcess(tmp_path, "second", config(database_url, server, tmp_path, 1))
        try:
            await wait_for(all_sent, second, timeout=30)
        finally:
            assert second.stop() == 0, second.output()
    finally:
        server.down()

    stored = await rows(sessions)
    arrived = server.handler.message_ids()
    duplicates = sum(count - 1 for count in arrived.values())
    print(
        f"crash test ({database_url.split(':')[0]}): killed at {at_kill}/{TOTAL} arrived, "
        f"{stranded} rows left in sending, {duplicates} duplicates"
    )
    assert set(arrived) == {row.message_id for row in stored}
    assert Counter(row.state for row in stored) == {OutboxState.SENT: TOTAL}
    assert duplicates <= CONCURRENCY
