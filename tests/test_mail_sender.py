"""The outbox sender against a real SMTP server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import Clock, FrozenClock, system_clock
from orchestrator.config import Settings
from orchestrator.db import create_engine, session_factory
from orchestrator.errors import NotFoundError
from orchestrator.mail.models import OutboxState
from orchestrator.mail.sender import (
    OutboxSender,
    PermanentFailure,
    RetryPolicy,
    SenderOptions,
    TemporaryFailure,
    Transport,
    claim,
)
from orchestrator.mail.sink import list_messages, read_message
from orchestrator.mail.smtp import SinkTransport, SmtpTransport, classify_reply, transport_for
from orchestrator.web.api import mail as mail_api
from orchestrator.web.app import create_app
from orchestrator.web.deps import require_staff
from tests.conftest import API_KEY, load_sample
from tests.live import serve
from tests.smtp_server import (
    FROM,
    START,
    RecordingHandler,
    Sessions,
    SmtpServer,
    outgoing,
    queue,
    rows,
    tls_contexts,
    until,
)
from tests.smtp_server import smtp_server_fixture as smtp_server_fixture

UNKNOWN = "unknown@example.org"


BASE = SenderOptions(concurrency=4, batch_size=20, poll_interval=0.02)


def make_sender(
    sessions: Sessions,
    transport: Transport,
    clock: Clock = system_clock,
    options: SenderOptions = BASE,
) -> OutboxSender:
    return OutboxSender(sessions, transport, FROM, options=options, clock=clock)


async def drain(sender: OutboxSender) -> int:
    """Run rounds until nothing is due; returns how many rows were claimed in all."""
    total = 0
    while claimed := await sender.run_once():
        total += claimed
    return total


@pytest.mark.asyncio
async def test_every_message_arrives_once_with_its_message_id_over_few_connections(
    sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    await queue(sessions, [outgoing(n) for n in range(30)])
    transport = SmtpTransport(smtp_server.settings(settings), connections=4)
    clock = FrozenClock(START + timedelta(seconds=5))
    assert await drain(make_sender(sessions, transport, clock)) == 30
    await transport.close()

    stored = await rows(sessions)
    arrived = smtp_server.handler.message_ids()
    assert arrived == {row.message_id: 1 for row in stored}
    assert {row.state for row in stored} == {OutboxState.SENT}
    assert all(row.attempts == 1 and row.sent_at == clock() for row in stored)
    first = smtp_server.handler.messages[0]
    assert first.mail_from == FROM and len(first.rcpt_tos) == 1
    assert smtp_server.handler.connections() <= 4 < 30
    assert transport.connections_opened <= 4


@pytest.mark.asyncio
async def test_550_fails_only_that_row_with_the_servers_reason(
    sessions: Sessions,
    settings: Settings,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "orchestrator.mail")
    smtp_server.handler.refuse[UNKNOWN] = "550 5.1.1 User unknown"
    await queue(sessions, [outgoing(n) for n in range(4)] + [outgoing(9, UNKNOWN)])
    transport = SmtpTransport(smtp_server.settings(settings))
    await drain(make_sender(sessions, transport, FrozenClock(START)))
    await transport.close()

    states = {row.recipient: (row.state, row.last_error) for row in await rows(sessions)}
    assert states.pop(UNKNOWN) == (OutboxState.FAILED, "550 5.1.1 User unknown")
    assert set(states.values()) == {(OutboxState.SENT, "")}
    assert smtp_server.handler.count == 4
    assert "mail.failed" in caplog.messages and "mail.sent" in caplog.messages
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.message for r in info] == ["mail.batch_delivered"]  # one line, not one a mail
    assert (info[0].sent, info[0].failed) == (4, 1)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_451_retries_with_backoff_and_is_sent_once_accepted(
    sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    busy = "busy@example.org"
    smtp_server.handler.refuse[busy] = "451 4.7.1 Try again later"
    await queue(sessions, [outgoing(1, busy)])
    clock = FrozenClock(START)
    transport = SmtpTransport(smtp_server.settings(settings))
    sender = make_sender(sessions, transport, clock)

    for attempt, backoff in ((1, 30), (2, 60)):
        assert await sender.run_once() == 1
        [row] = await rows(sessions)
        assert (row.state, row.attempts) == (OutboxState.RETRY, attempt)
        assert row.next_attempt_at == clock() + timedelta(seconds=backoff)
        assert row.last_error == "451 4.7.1 Try again later"
        clock.advance(timedelta(seconds=backoff - 1))
        assert await sender.run_once() == 0  # not due yet
        clock.advance(timedelta(seconds=1))

    del smtp_server.handler.refuse[busy]
    assert await sender.run_once() == 1
    await transport.close()
    [row] = await rows(sessions)
    assert (row.state, row.attempts, row.last_error) == (OutboxState.SENT, 3, "")
    assert smtp_server.handler.message_ids() == {row.message_id: 1}


@pytest.mark.asyncio
async def test_retries_run_out_into_failed(
    sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.refuse["busy@example.org"] = "452 4.2.2 Mailbox full"
    await queue(sessions, [outgoing(1, "busy@example.org")])
    clock = FrozenClock(START)
    transport = SmtpTransport(smtp_server.settings(settings))
    sender = make_sender(
        sessions, transport, clock, replace(BASE, retry=RetryPolicy(max_attempts=2))
    )
    await sender.run_once()
    clock.advance(timedelta(hours=1))
    await sender.run_once()
    await transport.close()
    [row] = await rows(sessions)
    assert (row.state, row.attempts) == (OutboxState.FAILED, 2)
    assert row.last_error == "452 4.2.2 Mailbox full"


@pytest.mark.asyncio
async def test_outage_moves_rows_to_retry_and_all_arrive_when_the_server_is_back(
    sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    await queue(sessions, [outgoing(n) for n in range(10)])
    clock = FrozenClock(START)
    transport = SmtpTransport(smtp_server.settings(settings))
    sender = make_sender(sessions, transport, clock)
    assert await sender.run_once() == 10  # opens pooled connections, then the server dies
    smtp_server.down()
    await queue(sessions, [outgoing(n) for n in range(10, 20)])
    assert await sender.run_once() == 10
    retrying = [row for row in await rows(sessions) if row.state is OutboxState.RETRY]
    assert len(retrying) == 10
    assert all(row.last_error.startswith("connection:") for row in retrying)

    smtp_server.up()
    clock.advance(timedelta(seconds=30))
    assert await drain(sender) == 10
    await transport.close()
    stored = await rows(sessions)
    assert {row.state for row in stored} == {OutboxState.SENT}
    assert smtp_server.handler.message_ids() == {row.message_id: 1 for row in stored}


@pytest.mark.asyncio
async def test_running_sender_rides_out_an_outage(
    sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    smtp_server.down()
    await queue(sessions, [outgoing(n) for n in range(15)], now=datetime.now(UTC))
    transport = SmtpTransport(smtp_server.settings(settings))
    fast = RetryPolicy(timedelta(milliseconds=50), timedelta(milliseconds=200), max_attempts=100)
    sender = make_sender(sessions, transport, options=replace(BASE, retry=fast))
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.3)  # the outage lasts a while: connections are refused
    smtp_server.up()
    await until(lambda: smtp_server.handler.count >= 15, timeout=15)
    sender.stop()
    await asyncio.wait_for(task, 10)
    await transport.close()
    stored = await rows(sessions)
    assert {row.state for row in stored} == {OutboxState.SENT}
    assert all(row.attempts >= 2 for row in stored)
    assert smtp_server.handler.message_ids() == {row.message_id: 1 for row in stored}


@pytest.mark.asyncio
async def test_stale_sending_rows_of_a_dead_sender_are_recovered(
    sessions: Sessions,
    settings: Settings,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await queue(sessions, [outgoing(n) for n in range(5)])
    assert len(await claim(sessions, START, 5)) == 5  # a sender that then died
    clock = FrozenClock(START + timedelta(minutes=9))
    transport = SmtpTransport(smtp_server.settings(settings))
    sender = make_sender(sessions, transport, clock, replace(BASE, lease=timedelta(minutes=10)))
    assert await sender.run_once() == 0  # still within the lease: maybe alive, hands off
    assert {row.state for row in await rows(sessions)} == {OutboxState.SENDING}

    clock.advance(timedelta(minutes=1, seconds=1))
    assert await sender.run_once() == 5
    await transport.close()
    stored = await rows(sessions)
    assert {(row.state, row.attempts) for row in stored} == {(OutboxState.SENT, 1)}
    assert smtp_server.handler.count == 5
    assert "mail.recovered" in caplog.messages


@pytest.mark.asyncio
async def test_concurrent_claims_never_share_a_row(sessions: Sessions, database_url: str) -> None:
    await queue(sessions, [outgoing(n) for n in range(120)])
    engines = [create_engine(database_url) for _ in range(6)]
    try:
        batches = await asyncio.gather(
            *(claim(session_factory(engine), START, 25) for engine in engines for _ in range(2))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    claimed = [item.id for batch in batches for item in batch]
    assert len(claimed) == len(set(claimed)) == 120


@pytest.mark.asyncio
async def test_two_senders_in_parallel_send_each_row_once(
    sessions: Sessions, database_url: str, settings: Settings, smtp_server: SmtpServer
) -> None:
    await queue(sessions, [outgoing(n) for n in range(200)])
    engines = [create_engine(database_url) for _ in range(2)]
    transports = [SmtpTransport(smtp_server.settings(settings)) for _ in engines]
    small = replace(BASE, batch_size=10)
    senders = [
        make_sender(session_factory(engine), transport, FrozenClock(START), small)
        for engine, transport in zip(engines, transports, strict=True)
    ]
    try:
        claimed = await asyncio.gather(*(drain(sender) for sender in senders))
    finally:
        for transport in transports:
            await transport.close()
        for engine in engines:
            await engine.dispose()
    assert sum(claimed) == 200
    stored = await rows(sessions)
    assert smtp_server.handler.message_ids() == {row.message_id: 1 for row in stored}
    assert {row.state for row in stored} == {OutboxState.SENT}


@pytest.mark.asyncio
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_rate_limit_spaces_messages_out(
    sessions: Sessions, settings: Settings, smtp_server: SmtpServer
) -> None:
    rate, count = 40.0, 20
    await queue(sessions, [outgoing(n) for n in range(count)])
    transport = SmtpTransport(smtp_server.settings(settings))
    sender = make_sender(sessions, transport, FrozenClock(START), replace(BASE, rate=rate))
    started = time.monotonic()
    await drain(sender)
    elapsed = time.monotonic() - started
    await transport.close()
    assert smtp_server.handler.count == count
    assert elapsed >= (count - 1) / rate * 0.9
    arrivals = sorted(message.at for message in smtp_server.handler.messages)
    window = 0.25
    busiest = max(sum(1 for t in arrivals if s <= t < s + window) for s in arrivals)
    assert busiest <= rate * window + 4  # slack for scheduling jitter on a busy machine


def test_replies_are_classified_by_code_and_backoff_doubles_up_to_the_cap() -> None:
    assert isinstance(classify_reply(550, "5.1.1 User unknown"), PermanentFailure)
    assert isinstance(classify_reply(451, "4.7.1 Greylisted"), TemporaryFailure)
    reason = classify_reply(421, "4.3.2  Service\r\n shutting down").reason
    assert reason == "421 4.3.2 Service shutting down"
    delays = [RetryPolicy().delay(attempt).total_seconds() for attempt in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


@pytest.mark.asyncio
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["starttls", "tls"])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS
async def test_tls_modes_with_login(
    mode: str, sessions: Sessions, settings: Settings, tmp_path: Path
) -> None:
    server_tls, client_tls = tls_contexts(tmp_path)
    handler = RecordingHandler()
    tls: dict[str, object] = (
        {"tls_context": server_tls, "require_starttls": True}
        if mode == "starttls"
        else {"ssl_context": server_tls, "auth_require_tls": False}  # implicit TLS
    )
    server = SmtpServer(handler, authenticator=handler.authenticate, auth_required=True, **tls)
    server.up()
    login = {"smtp_tls": mode, "smtp_username": "mailer", "smtp_password": "s3cret"}
    config = server.settings(settings, **login)
    transport = SmtpTransport(config, tls_context=client_tls, idle_check=0)  # NOOP on reuse
    try:
        await queue(sessions, [outgoing(n) for n in range(3)])
        await drain(
            make_sender(sessions, transport, FrozenClock(START), replace(BASE, concurrency=1))
        )
    finally:
        await transport.close()
        server.down()
    assert handler.count == 3
    assert handler.logins == ["mailer"]  # one connection, logged in once, reused


@pytest.mark.asyncio
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_without_smtp_host_mail_lands_in_the_readable_sink(
    sessions: Sessions, settings: Settings
) -> None:
    await queue(sessions, [outgoing(n) for n in range(3)])
    transport = transport_for(settings)
    assert isinstance(transport, SinkTransport)
    assert await drain(make_sender(sessions, transport, FrozenClock(START))) == 3
    stored = await rows(sessions)
    folder = settings.mail_sink_dir
    entries = list_messages(folder)
    assert {entry.recipient for entry in entries} == {row.recipient for row in stored}
    assert {entry.subject for entry in entries} == {
        f"Einladung {n}: Grüße aus Heinsberg" for n in range(3)
    }
    parsed = BytesParser(policy=policy.default).parsebytes(read_message(folder, entries[0].name))
    assert parsed["Message-ID"] in {row.message_id for row in stored}
    await transport.send(stored[0].body, stored[0].recipient, FROM)  # a resend replaces its file
    assert len(list_messages(folder)) == 3
    assert not list(folder.glob(".*"))  # no temporary files left behind
    for bad in ("../orchestrator.sqlite3", ".hidden.eml", "a/b.eml", "x.txt", "missing.eml"):
        with pytest.raises(NotFoundError):
            read_message(folder, bad)


@pytest.mark.asyncio
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sink_and_outbox_counts_over_http(
    sessions: Sessions, session: AsyncSession, settings: Settings
) -> None:
    conference = await load_sample(session)
    item = replace(outgoing(1), conference_id=conference.id)
    await queue(sessions, [item, outgoing(2, "noconference@example.org")])
    await make_sender(sessions, transport_for(settings), FrozenClock(START)).run_once()
    app = create_app(settings)
    if not any(getattr(route, "path", "") == "/api/v1/mail-sink" for route in app.routes):
        app.include_router(mail_api.router, prefix="/api/v1", dependencies=[Depends(require_staff)])
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with serve(app) as base, httpx.AsyncClient(base_url=base, headers=headers) as client:
        listing = (await client.get("/api/v1/mail-sink")).json()
        one = await client.get(f"/api/v1/mail-sink/{listing[0]['name']}")
        traversal = await client.get("/api/v1/mail-sink/..%2Forchestrator.sqlite3")
        counts = (await client.get(f"/api/v1/conferences/{conference.slug}/outbox")).json()
        anonymous = await client.get("/api/v1/mail-sink", headers={"Authorization": ""})
    assert {entry["recipient"] for entry in listing} == {
        "person1@example.org",
        "noconference@example.org",
    }
    assert one.status_code == 200 and one.headers["content-type"] == "message/rfc822"
    assert traversal.status_code == 404
    assert counts == {"queued": 0, "sending": 0, "sent": 1, "retry": 0, "failed": 0}
    assert anonymous.status_code == 401
