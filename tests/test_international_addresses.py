"""Internationalised addresses (issue 10): accepted at import when well-formed, then through
the outbox to a real SMTP server (aiosmtpd), with and without SMTPUTF8: delivered with UTF-8
headers (RFC 6531/6532), or failed with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import Parser

import pytest

from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.mail.addresses import NO_SMTPUTF8, needs_smtputf8, split, wire_address
from orchestrator.mail.mime import serialise
from orchestrator.mail.models import OutboxState
from orchestrator.mail.outbox import Outgoing
from orchestrator.mail.rendering import Rendered, build_message, mailbox
from orchestrator.mail.sender import OutboxSender, SenderOptions
from orchestrator.mail.smtp import SmtpTransport
from orchestrator.participants.importing import validate_rows
from tests.smtp_server import FROM, START, Sessions, SmtpServer, queue, rows

GUELSEN = "gülşen.çelik@example.org"
IDN = "anna@exämple.org"
PLAIN = "paul@example.org"


@pytest.fixture(params=[True, False], ids=["smtputf8", "no-smtputf8"])
def relay(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """aiosmtpd offering SMTPUTF8 (its Controller's default), or not."""
    server = SmtpServer(enable_SMTPUTF8=request.param)
    server.up()
    yield server
    server.down()


def invitation(number: int, name: str, address: str) -> Outgoing:
    """A mail built as invitations are (mailbox, build_message), to `address`."""
    rendered = Rendered("Einladung zur Integrationskonferenz – Grüße", "Hallo", "<p>Hallo</p>")
    message = build_message(
        rendered,
        sender=f"Konferenz <{FROM}>",
        recipient=mailbox(name, address),
        calendar=None,
        method=None,
        language="de",
    )
    return Outgoing("invitation", f"utf8:{number}", address, message)


async def deliver(sessions: Sessions, settings: Settings, relay: SmtpServer) -> None:
    transport = SmtpTransport(relay.settings(settings))
    options = SenderOptions(concurrency=2, batch_size=10, poll_interval=0.02)
    clock = FrozenClock(START + timedelta(seconds=1))
    sender = OutboxSender(sessions, transport, FROM, options=options, clock=clock)
    while await sender.run_once():
        pass
    await transport.close()


def parse(data: bytes) -> EmailMessage:
    """A message with UTF-8 headers, read as a mail program that knows RFC 6532 reads it."""
    message = Parser(policy=policy.default).parsestr(data.decode("utf-8"))
    assert isinstance(message, EmailMessage)
    return message


def test_addresses_on_the_wire() -> None:
    assert wire_address(IDN) == "anna@xn--exmple-cua.org" and not needs_smtputf8(IDN)
    assert wire_address(GUELSEN) == GUELSEN and needs_smtputf8(GUELSEN)
    assert split(" Paul@Example.ORG ") == ("Paul", "example.org")
    for bad in ("a@example.org\r\nBcc: x@example.org", "a b@example.org", "a@b@c", "@x.org",
                "a@", "a..b@example.org", "a@ex ample.org", 'a"b@example.org'):  # fmt: skip
        with pytest.raises(ValueError, match="gültig"):
            mailbox("Anna", bad)


def test_no_line_break_reaches_a_header_with_utf8_headers() -> None:
    item = invitation(1, "Gülşen\r\nBcc: victim@example.org", GUELSEN)
    assert item.message is not None
    head = serialise(item.message, utf8=True).split(b"\r\n\r\n", 1)[0].decode("utf-8")
    (to,) = [line for line in head.split("\r\n") if line.startswith("To:")]
    assert to == f'To: "Gülşen Bcc: victim@example.org" <{GUELSEN}>'
    assert not any(line.startswith("Bcc") for line in head.split("\r\n"))


@pytest.mark.asyncio
async def test_internationalised_addresses_are_delivered_or_fail_with_the_reason(
    sessions: Sessions, settings: Settings, relay: SmtpServer
) -> None:
    smtputf8 = relay.options["enable_SMTPUTF8"]
    items = [
        invitation(1, "Gülşen Çelik", GUELSEN),
        invitation(2, "Anna Ärger", IDN),
        invitation(3, "Paul", PLAIN),
    ]
    await queue(sessions, items)
    await deliver(sessions, settings, relay)

    stored = {row.recipient: row for row in await rows(sessions)}
    assert set(stored) == {GUELSEN, "anna@xn--exmple-cua.org", PLAIN}
    guelsen = stored.pop(GUELSEN)
    if smtputf8:
        assert (guelsen.state, guelsen.last_error) == (OutboxState.SENT, "")
    else:
        assert (guelsen.state, guelsen.last_error) == (OutboxState.FAILED, NO_SMTPUTF8)
        assert NO_SMTPUTF8.index("Der Mailserver") < NO_SMTPUTF8.index("The mail relay")
    assert {row.state for row in stored.values()} == {OutboxState.SENT}

    arrived = {message.rcpt_tos[0]: message for message in relay.handler.messages}
    assert set(arrived) == {"anna@xn--exmple-cua.org", PLAIN} | ({GUELSEN} if smtputf8 else set())
    idn = arrived["anna@xn--exmple-cua.org"]
    assert idn.data.split(b"\r\n\r\n", 1)[0].isascii()  # no SMTPUTF8 needed: IDNA domain
    assert parse(idn.data)["To"].addresses[0].domain == "xn--exmple-cua.org"
    if smtputf8:
        received = arrived[GUELSEN]
        head = received.data.split(b"\r\n\r\n", 1)[0]
        assert f"To: Gülşen Çelik <{GUELSEN}>".encode() in head.split(b"\r\n")  # RFC 6532
        (to,) = parse(received.data)["To"].addresses
        assert (to.display_name, to.addr_spec) == ("Gülşen Çelik", GUELSEN)
        assert "Grüße" in str(parse(received.data)["Subject"])


def test_international_addresses_pass_and_broken_ones_are_named() -> None:
    """Issue 10: an address with ş or ç is a good address; a malformed one never gets in."""
    rows = [
        (2, {"email": "Gülşen.Çelik@Example.org", "first_name": "Gülşen"}),
        (3, {"email": "anna@exämple.org"}),
        (4, {"email": "gülşen@@example.org"}),
        (5, {"email": "gülşen çelik@example.org"}),
        (6, {"email": "ömer@example..org"}),
    ]
    good, errors = validate_rows(rows, {"arbeit"})
    assert [(n, item.email) for n, item in good] == [
        (2, "gülşen.çelik@example.org"),
        (3, "anna@exämple.org"),
    ]
    assert [(e.row, e.field) for e in errors] == [(4, "email"), (5, "email"), (6, "email")]
    assert all(e.reason.startswith("E-Mail-Adresse ungültig") for e in errors)
