"""Invitations end to end: the real CLI queues and sends to a real SMTP server on loopback."""

from __future__ import annotations

import email
import subprocess
from email import policy
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest
import vobject

from orchestrator.mail.addresses import NO_SMTPUTF8
from tests.conftest import SAMPLE_TOML
from tests.smtp_server import SmtpServer, smtp_server_fixture
from tests.test_cli import ORCHESTRATOR, _env

__all__ = ["smtp_server_fixture"]

GUELSEN = "gülşen.çelik@example.org"

PEOPLE = (
    "email;first_name;last_name;language;attendance_mode;forum_choice_1\n"
    "anna@example.org;Anna;Müller;de;online;sprache\n"
    "noor@example.org;Noor;Haddad;en;in_person;arbeit\n"
    'oemer@example.org;Ömer;"O\'Connor <script>";de;undecided;werte\n'
)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [ORCHESTRATOR, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(database_url: str, tmp_path: Path, smtp_server: SmtpServer) -> dict[str, str]:
    values = _env(tmp_path / "data", database_url)
    values.update(
        ORCH_SMTP_HOST=smtp_server.host,
        ORCH_SMTP_PORT=str(smtp_server.port),
        ORCH_MAIL_FROM="Integrationskonferenz <noreply@kreis-heinsberg.example.org>",
        ORCH_BASE_URL="https://konferenz.example.org",
    )
    return values


def _messages(server: SmtpServer) -> dict[str, EmailMessage]:
    parsed = {}
    for received in server.handler.messages:
        message = email.message_from_bytes(received.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        parsed[received.rcpt_tos[0]] = message
    return parsed


def _calendar(message: EmailMessage) -> bytes:
    alternative = next(
        p for p in message.iter_parts() if p.get_content_type() == "multipart/alternative"
    )
    part = next(p for p in alternative.iter_parts() if p.get_content_type() == "text/calendar")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def _send_invitations(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Import the sample conference and PEOPLE, assign the forums, send the invitations."""
    _cli(env, "conference", "import", str(SAMPLE_TOML))
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE, encoding="utf-8-sig")
    _cli(env, "participants", "import", "ik-heinsberg-2027", str(people))
    _cli(env, "forums", "assign", "ik-heinsberg-2027")
    return _cli(env, "invites", "send", "ik-heinsberg-2027")


def test_invites_send_delivers_calendar_mail_once(
    env: dict[str, str], tmp_path: Path, smtp_server: SmtpServer
) -> None:
    sent = _send_invitations(env, tmp_path)
    assert "3 Nachrichten eingereiht" in sent.stdout and "3 versendet" in sent.stdout
    messages = _messages(smtp_server)
    assert sorted(messages) == ["anna@example.org", "noor@example.org", "oemer@example.org"]
    anna, noor = messages["anna@example.org"], messages["noor@example.org"]
    assert anna.get_content_type() == "multipart/mixed"
    kinds = [p.get_content_type() for p in anna.walk()]
    assert kinds == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
        "application/ics",
    ]
    assert "Einladung" in str(anna["Subject"]) and "nvitation" in str(noor["Subject"])
    ics = _calendar(anna)
    calendar = icalendar.Calendar.from_ical(ics)
    assert calendar["METHOD"] == "REQUEST"
    assert len(calendar.walk("VEVENT")) == 3  # two plenaries and her forum
    parsed = vobject.readOne(ics.decode())
    assert len(parsed.vevent_list) == 3
    assert "/j/" in str(calendar.walk("VEVENT")[0]["LOCATION"])  # online: join link
    oemer = messages["oemer@example.org"]
    html = oemer.get_body(("html",))
    assert html is not None and "&lt;script&gt;" in str(html.get_content())
    assert len(str(oemer["To"]).splitlines()) == 1
    again = _cli(env, "invites", "send", "ik-heinsberg-2027")
    assert "0 Nachrichten eingereiht" in again.stdout
    assert smtp_server.handler.count == 3


def test_moved_session_sends_updates_with_next_sequence(
    env: dict[str, str], tmp_path: Path, smtp_server: SmtpServer
) -> None:
    _send_invitations(env, tmp_path)
    moved = tmp_path / "moved.toml"
    moved.write_text(
        SAMPLE_TOML.read_text(encoding="utf-8").replace('start = "13:15"', 'start = "13:30"'),
        encoding="utf-8",
    )
    _cli(env, "conference", "import", str(moved))
    update = _cli(env, "invites", "send", "ik-heinsberg-2027")
    # The import itself queued one update per person; sending delivers them.
    assert "0 Nachrichten eingereiht" in update.stdout and "6 versendet" in update.stdout
    updates = smtp_server.handler.messages[3:]
    assert len(updates) == 3
    for received in updates:
        message = email.message_from_bytes(received.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        events = icalendar.Calendar.from_ical(_calendar(message)).walk("VEVENT")
        assert [event.decoded("SEQUENCE") for event in events] == [1]
        assert events[0].decoded("DTSTART").hour == 13
        assert events[0].decoded("DTSTART").minute == 30


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_an_internationalised_address_is_delivered_or_reported_as_failed(
    database_url: str, tmp_path: Path, smtputf8: bool
) -> None:
    """Issue 10: gülşen.çelik@… was accepted, then never invited and never mentioned."""
    relay = SmtpServer(enable_SMTPUTF8=smtputf8)
    relay.up()
    try:
        env = _env(tmp_path / "data", database_url)
        env.update(ORCH_SMTP_HOST=relay.host, ORCH_SMTP_PORT=str(relay.port))
        _cli(env, "conference", "import", str(SAMPLE_TOML))
        people = tmp_path / "people.csv"
        people.write_text(PEOPLE + f"{GUELSEN};Gülşen;Çelik;de;online;arbeit\n", "utf-8-sig")
        _cli(env, "participants", "import", "ik-heinsberg-2027", str(people))
        _cli(env, "forums", "assign", "ik-heinsberg-2027")
        sent = subprocess.run(
            [ORCHESTRATOR, "invites", "send", "ik-heinsberg-2027"],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    finally:
        relay.down()
    assert "4 Nachrichten eingereiht" in sent.stdout
    arrived = {message.rcpt_tos[0] for message in relay.handler.messages}
    if smtputf8:
        assert sent.returncode == 0, sent.stderr
        assert "4 versendet, 0 fehlgeschlagen" in sent.stdout
        assert GUELSEN in arrived and len(arrived) == 4
        return
    assert sent.returncode == 1
    assert "3 versendet, 1 fehlgeschlagen" in sent.stdout
    assert f"  1 × {NO_SMTPUTF8}" in sent.stdout.splitlines()
    last = sent.stderr.splitlines()[-1]  # after the log lines: the one-line reason
    assert last.startswith("Fehler: 1 Nachricht(en) dieses Laufs fehlgeschlagen"), sent.stderr
    assert GUELSEN not in arrived and len(arrived) == 3
