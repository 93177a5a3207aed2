"""A real SMTP server on loopback (aiosmtpd) that records what arrives, and queued test mail."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.config import Settings
from orchestrator.db import transaction
from orchestrator.mail.models import OutboxMessage
from orchestrator.mail.outbox import Outgoing, enqueue_many

HOST = "127.0.0.1"
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
FROM = "noreply@kreis.example"
Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str
    session: int  # which SMTP connection carried it
    at: float  # time.monotonic() when accepted


class RecordingHandler:
    """Collects accepted messages; refuses chosen recipients; can answer slowly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}  # recipient -> reply, e.g. "550 5.1.1 User unknown"
        self.delay = 0.0  # seconds between storing a message and answering "250"
        self._sessions: dict[int, object] = {}  # kept alive so ids stay unique
        self.logins: list[str] = []

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        data = bytes(envelope.original_content or envelope.content)
        message_id = str(BytesHeaderParser().parsebytes(data).get("Message-ID", ""))
        with self._lock:
            self._sessions[id(session)] = session
            self.messages.append(
                Received(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    data,
                    message_id,
                    id(session),
                    time.monotonic(),
                )
            )
        if self.delay:  # stored first, answered late: a client killed now never hears "250"
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept the login "mailer" / "s3cret" only."""
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def message_ids(self) -> Counter[str]:
        """How often each Message-ID arrived."""
        with self._lock:
            return Counter(message.message_id for message in self.messages)

    def connections(self) -> int:
        """How many SMTP connections delivered at least one message."""
        with self._lock:
            return len({message.session for message in self.messages})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    """aiosmtpd on 127.0.0.1; `down()` makes the port refuse connections until `up()`."""

    def __init__(self, handler: RecordingHandler | None = None, **options: Any) -> None:
        self.handler = handler or RecordingHandler()
        self.host = HOST
        self.port = free_port()
        self.options = options
        self._controller: Controller | None = None

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(
                self.handler, hostname=self.host, port=self.port, **self.options
            )
            self._controller.start()

    def settings(self, base: Settings, **changes: object) -> Settings:
        """`base` with this server as the SMTP relay and FROM as the sender."""
        values = {"smtp_host": self.host, "smtp_port": self.port, "mail_from": FROM, **changes}
        return base.model_copy(update=values)

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS, no auth) for one test."""
    server = SmtpServer()
    server.up()
    yield server
    server.down()


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


def outgoing(number: int, recipient: str | None = None) -> Outgoing:
    """A small rendered mail with a non-ASCII subject."""
    recipient = recipient or f"person{number}@example.org"
    message = EmailMessage()
    message["From"] = f"Konferenz <{FROM}>"
    message["To"] = recipient
    message["Subject"] = f"Einladung {number}: Grüße aus Heinsberg"
    message.set_content(f"Hallo {number},\n\nwillkommen.\n")
    return Outgoing(kind="test", dedup_key=f"test:{number}", recipient=recipient, message=message)


async def queue(sessions: Sessions, items: Sequence[Outgoing], now: datetime = START) -> None:
    async with transaction(sessions) as session:
        await enqueue_many(session, items, message_domain="kreis.example", now=now)


async def rows(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        result = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
        return list(result.scalars())


async def until(condition: Callable[[], bool], *, timeout: float) -> None:
    """Poll until the condition holds; fail after `timeout` seconds rather than hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
