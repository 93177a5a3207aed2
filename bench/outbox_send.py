"""Outbox sender throughput against a bare aiosmtplib loop, both to a local aiosmtpd sink.

    .venv/bin/python bench/outbox_send.py [--messages 5000] [--concurrency 4] [--batch 100]

The same pre-rendered messages (about 8 KB, text + HTML + iCalendar) go (a) through one
reused aiosmtplib connection in a plain loop, the bare limit, and (b) through the outbox:
queued in a fresh SQLite file, then claimed, sent and recorded by OutboxSender. The sink is
aiosmtpd's Sink handler in a process of its own, as a real relay would be.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import func, insert, select, update

from bench.common import scratch_database
from orchestrator.config import Settings
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.mail.sender import OutboxSender, SenderOptions, Sessions
from orchestrator.mail.smtp import SmtpTransport
from orchestrator.schema import upgrade

HOST = "127.0.0.1"
FROM = "noreply@kreis.example"
PARAGRAPH = (
    "Wir laden Sie herzlich zur Integrationskonferenz des Kreises ein. Bitte bestätigen Sie "
    "Ihre Teilnahme über Ihre persönliche Seite; dort finden Sie auch die Links zu den Foren.\n"
)
ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n" + "X-PAD:" + "x" * 60 + "\r\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Outbox sender vs bare aiosmtplib loop.")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def render(number: int) -> EmailMessage:
    """A realistic invitation-sized multipart message (about 8 KB on the wire)."""
    message = EmailMessage()
    message["From"] = f"Integrationskonferenz <{FROM}>"
    message["To"] = f"person{number}@example.org"
    message["Subject"] = f"Einladung zur Integrationskonferenz – Teilnehmerin {number}"
    message.set_content(PARAGRAPH * 11)
    html = "".join(f"<p>{PARAGRAPH}</p>" for _ in range(11))
    message.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    message.add_attachment(
        (ICS * 20 + "END:VCALENDAR\r\n").encode(),
        maintype="text",
        subtype="calendar",
        params={"method": "REQUEST"},
        filename="einladung.ics",
    )
    return message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def sink_server() -> Iterator[int]:
    """aiosmtpd's discarding Sink handler in its own process; yields the port."""
    port = free_port()
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{HOST}:{port}"]
    process = subprocess.Popen([*command, "-c", "aiosmtpd.handlers.Sink"])
    try:
        for _ in range(500):
            with socket.socket() as probe:
                if probe.connect_ex((HOST, port)) == 0:
                    break
            time.sleep(0.01)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class Rate:
    """Wall-clock throughput, and this process's CPU time (all threads) per message."""

    per_second: float
    cpu_ms: float


@contextmanager
def measured(count: Callable[[], int], into: list[Rate]) -> Iterator[None]:
    started, cpu = time.perf_counter(), time.process_time()
    yield
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    into.append(Rate(count() / elapsed, cpu_used * 1000 / count()))


async def bare_loop(port: int, bodies: list[tuple[str, bytes]]) -> None:
    """Every message through one reused connection, no database."""
    client = aiosmtplib.SMTP(hostname=HOST, port=port, start_tls=False)
    await client.connect()
    for recipient, body in bodies:
        await client.sendmail(FROM, [recipient], body)
    await client.quit()


async def fill_outbox(sessions: Sessions, count: int) -> list[tuple[str, bytes]]:
    """Queue `count` pre-rendered messages (one rendering, varied addresses and Message-IDs)."""
    template = render(0).as_bytes(policy=policy.SMTP)
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    bodies: list[tuple[str, bytes]] = []
    for number in range(count):
        recipient = f"person{number}@example.org"
        message_id = f"<bench-{number}@kreis.example>"
        body = template.replace(b"person0@example.org", recipient.encode())
        body = b"Message-ID: " + message_id.encode() + b"\r\n" + body
        bodies.append((recipient, body))
        rows.append(
            {
                "kind": "bench",
                "dedup_key": f"bench:{number}",
                "recipient": recipient,
                "subject": "Einladung",
                "message_id": message_id,
                "body": body,
                "state": OutboxState.QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "created_at": now,
            }
        )
    async with transaction(sessions) as session:
        await session.execute(insert(OutboxMessage), rows)
    return bodies


async def requeue(sessions: Sessions) -> None:
    """Put every row back to queued for the next round."""
    values = {"state": OutboxState.QUEUED, "attempts": 0, "sent_at": None}
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage).values(next_attempt_at=datetime.now(UTC), **values)
        )


async def outbox_run(sessions: Sessions, port: int, options: SenderOptions) -> int:
    """Claim, send and record until the outbox is empty; returns how many were sent."""
    settings = Settings(_env_file=None, smtp_host=HOST, smtp_port=port, mail_from=FROM)
    transport = SmtpTransport(settings, connections=options.concurrency)
    sender = OutboxSender(sessions, transport, FROM, options=options)
    total = 0
    while claimed := await sender.run_once():
        total += claimed
    await transport.close()
    async with sessions() as session:
        statement = select(func.count()).where(OutboxMessage.state == OutboxState.SENT)
        sent = (await session.execute(statement)).scalar_one()
    assert sent == total, f"only {sent} of {total} marked sent"
    return total


async def main(args: argparse.Namespace) -> None:
    with sink_server() as port:
        async with scratch_database(None) as url:
            engine = create_engine(url)
            await upgrade(engine)
            sessions = session_factory(engine)
            bodies = await fill_outbox(sessions, args.messages)
            size = sum(len(body) for _, body in bodies) / len(bodies)
            print(f"{len(bodies)} messages of {size / 1024:.1f} KB, {args.rounds} rounds each")
            options = SenderOptions(concurrency=args.concurrency, batch_size=args.batch)
            bare: list[Rate] = []
            outbox: list[Rate] = []
            for round_number in range(args.rounds):  # interleaved: both see the same machine load
                if round_number:
                    await requeue(sessions)
                with measured(lambda: len(bodies), bare):
                    await bare_loop(port, bodies)
                with measured(lambda: len(bodies), outbox):
                    await outbox_run(sessions, port, options)
            await engine.dispose()
    a, b = (
        _report("(a) bare aiosmtplib loop, 1 connection", bare),
        _report(f"(b) OutboxSender, {args.concurrency} connections", outbox),
    )
    print(f"ratio (b)/(a), medians: {b / a:.0%} (bar: at least 50%)")


def _report(label: str, rates: list[Rate]) -> float:
    median = statistics.median(rate.per_second for rate in rates)
    cpu = statistics.median(rate.cpu_ms for rate in rates)
    rounds = ", ".join(f"{rate.per_second:.0f}" for rate in rates)
    print(f"{label + ':':40} {median:6.0f} msgs/s, {cpu:.2f} ms CPU/msg (rounds: {rounds})")
    return median


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
