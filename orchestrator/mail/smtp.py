"""Transports for the outbox sender: SMTP with reused connections, and the local .eml sink."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

import aiosmtplib

from orchestrator.config import Settings
from orchestrator.mail.addresses import NO_SMTPUTF8, needs_smtputf8
from orchestrator.mail.sender import PermanentFailure, TemporaryFailure, Transport

# Connection-level trouble: the message itself may be fine, so try again later.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPAuthenticationError,  # a wrong password must not fail every message for good
    OSError,
    TimeoutError,
)
# Anything while connecting (including an unsupported STARTTLS) is about the connection.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (*_CONNECTION_ERRORS, aiosmtplib.SMTPException)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def envelope_sender(mail_from: str) -> str:
    """The bare address of a From value such as "Name <noreply@example.org>"."""
    return parseaddr(mail_from)[1] or mail_from


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def classify_reply(code: int, message: str) -> TemporaryFailure | PermanentFailure:
    """5xx: the server will never take it; anything else (4xx): try again later."""
    reason = _reply(code, message)
    return PermanentFailure(reason) if code >= 500 else TemporaryFailure(reason)


def _refused(error: aiosmtplib.SMTPRecipientsRefused) -> TemporaryFailure | PermanentFailure:
    first = error.recipients[0] if error.recipients else None
    if first is None:
        return TemporaryFailure("recipient refused")
    return classify_reply(first.code, first.message)


class SmtpTransport:
    """Sends through the configured relay; one reused connection per concurrent sender."""

    def __init__(
        self,
        settings: Settings,
        *,
        connections: int = 4,
        timeout: float = 30.0,
        idle_check: float = 15.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpTransport needs ORCH_SMTP_HOST")
        self.settings = settings
        self.timeout = timeout
        self.tls_context = tls_context
        self.idle_check = idle_check  # seconds idle after which a connection is probed (NOOP)
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self.connections_opened = 0

    def _client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",  # never opportunistic: "none" means none
            timeout=self.timeout,
            tls_context=self.tls_context,
        )

    async def _reusable(self, client: aiosmtplib.SMTP, since: float) -> bool:
        """Still connected; after a long pause also still answering (relays drop idle links)."""
        if not client.is_connected:
            return False
        if time.monotonic() - since < self.idle_check:
            return True
        try:
            await client.noop(timeout=min(self.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError):
            client.close()
            return False
        return True

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        self._idle.append((client, time.monotonic()))

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, since = self._idle.pop()
            if await self._reusable(client, since):
                return client
        client = self._client()
        try:
            await client.connect()  # TLS or STARTTLS and login as configured
        except BaseException:
            client.close()
            raise
        self.connections_opened += 1
        return client

    async def send(self, message: bytes, recipient: str, sender: str) -> None:
        """Deliver one message; raises TemporaryFailure or PermanentFailure."""
        async with self._slots:
            try:
                client = await self._checkout()
            except _CONNECT_ERRORS as error:
                raise TemporaryFailure(_connection_reason(error)) from error
            await self._send_on(client, message, recipient, sender)

    async def _send_on(
        self, client: aiosmtplib.SMTP, message: bytes, recipient: str, sender: str
    ) -> None:
        try:
            if client.is_ehlo_or_helo_needed:  # the extensions are known only after EHLO
                await client.ehlo()
            options = _mail_options(client, message, recipient)
            await client.sendmail(sender, [recipient], message, mail_options=options)
        except aiosmtplib.SMTPRecipientsRefused as error:
            self._checkin(client)
            raise _refused(error) from error
        except _CONNECTION_ERRORS as error:
            client.close()
            raise TemporaryFailure(_connection_reason(error)) from error
        except aiosmtplib.SMTPResponseException as error:
            self._keep_unless_closing(client, error.code)
            raise classify_reply(error.code, error.message) from error
        except (aiosmtplib.SMTPNotSupported, ValueError) as error:
            self._checkin(client)
            raise PermanentFailure(_unsupported(error, recipient)) from error
        except BaseException:
            client.close()
            raise
        self._checkin(client)

    def _keep_unless_closing(self, client: aiosmtplib.SMTP, code: int) -> None:
        if code == 421:  # "service not available, closing transmission channel"
            client.close()
        else:
            self._checkin(client)

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _mail_options(client: aiosmtplib.SMTP, message: bytes, recipient: str) -> list[str]:
    options = []
    if needs_smtputf8(recipient):  # aiosmtplib refuses it if the relay does not offer it
        options.append("SMTPUTF8")
    if not message.isascii() and client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


def _unsupported(error: Exception, recipient: str) -> str:
    """The reason for the outbox: in plain words when SMTPUTF8 is what the relay lacks."""
    if isinstance(error, aiosmtplib.SMTPNotSupported) and needs_smtputf8(recipient):
        return NO_SMTPUTF8
    return str(error)


def _connection_reason(error: BaseException) -> str:
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _reply(error.code, error.message)
    text = str(error) or type(error).__name__
    return f"connection: {text}"


def sink_file_name(message: bytes) -> str:
    """`<Date as UTC>-<Message-ID made safe>.eml`: the same message always gets one name."""
    headers = BytesHeaderParser().parsebytes(message)
    when = _header_date(headers.get("Date"))
    message_id = _SAFE.sub("_", str(headers.get("Message-ID") or uuid.uuid4().hex).strip("<> "))
    return f"{when:%Y%m%dT%H%M%SZ}-{message_id[:150]}.eml"


def _header_date(value: object) -> datetime:
    try:
        parsed = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return datetime.now(UTC)
    return parsed.astimezone(UTC)


def _one_line(value: str) -> str:
    return " ".join(value.split())


class SinkTransport:
    """The embedded default without SMTP: each message becomes a .eml file to read."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: bytes, recipient: str, sender: str) -> None:
        """Write the message atomically; a resend of the same message replaces its file."""
        try:
            await asyncio.to_thread(self._write, message, recipient, sender)
        except OSError as error:
            raise TemporaryFailure(f"mail sink: {error}") from error

    def _write(self, message: bytes, recipient: str, sender: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = sink_file_name(message)
        envelope = f"Return-Path: <{_one_line(sender)}>\r\nDelivered-To: {_one_line(recipient)}\r\n"
        temporary = self.directory / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        temporary.write_bytes(envelope.encode() + message)
        temporary.replace(self.directory / name)  # readers see the whole file or none

    async def close(self) -> None:
        """Nothing to close."""


def transport_for(
    settings: Settings, *, connections: int = 4, tls_context: ssl.SSLContext | None = None
) -> Transport:
    """SMTP when ORCH_SMTP_HOST is set, else the local sink in the data directory."""
    if settings.smtp_host:
        return SmtpTransport(settings, connections=connections, tls_context=tls_context)
    return SinkTransport(settings.mail_sink_dir)
