"""mail/mime.py: the sped-up writer must give exactly what policy.SMTP gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from orchestrator.mail import mime
from orchestrator.mail.outbox import finalise
from orchestrator.mail.rendering import Rendered, build_message, mailbox

NAMES = [
    "Anna Schmidt",
    "Ömer Özdemir-Müller",
    'Ömer "O\'Connor" <script>\r\nBcc: victim@example.org',
    "Schmidt, Anna (Amt 47)",
    "نور الهدى عبد الرحمن",
    "Dr. Maximiliane Theodora von und zu Hohenzollern-Sigmaringen-Wittelsbach-Schleswig",
    "",
]
SUBJECTS = [
    "Einladung: Integrationskonferenz 2027",
    "Änderung: Forum „Sprache & Arbeit“ – neue Zeit " * 3,
]


def _message(name: str, subject: str, calendar: bool) -> EmailMessage:
    rendered = Rendered(
        subject=subject,
        text="Guten Tag,\n\nzeile mit Leerzeichen am Ende   \n= Gleich\r\n.\nÜ" * 20,
        html='<p class="a">Grüße &amp; <a href="https://x.example/p/t">Seite</a></p>\n' * 30,
    )
    message = build_message(
        rendered,
        sender="Kreis Heinsberg – Integration <konferenz@kreis-heinsberg.example>",
        recipient=mailbox(name, "person@example.org"),
        calendar=b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n" if calendar else None,
        method="REQUEST" if calendar else None,
        language="de",
        reply_to="orga@kreis-heinsberg.example",
    )
    finalise(message, "kreis-heinsberg.example", datetime(2027, 3, 1, 9, tzinfo=UTC))
    return message


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("calendar", [True, False])
def test_serialise_equals_the_library_with_policy_smtp(
    name: str, subject: str, calendar: bool
) -> None:
    for _ in range(2):  # the second message comes from the caches
        message = _message(name, subject, calendar)
        assert mime.serialise(message) == message.as_bytes(policy=policy.SMTP)


def test_a_crlf_in_a_name_cannot_add_a_header() -> None:
    message = _message(NAMES[2], SUBJECTS[0], calendar=True)
    parsed = message_from_bytes(mime.serialise(message), policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].addr_spec == "person@example.org"
    assert "Bcc: victim" in parsed["To"].addresses[0].display_name  # kept as text, one line


def test_message_id_fast_path_matches_the_library() -> None:
    for domain in ("kreis-heinsberg.example", "a" * 50 + ".example", "x.y"):
        value = f"<{uuid.uuid4().hex}@{domain}>"
        library = policy.SMTP.fold_binary(
            "Message-ID", policy.SMTP.header_factory("Message-ID", value)
        )
        ours = mime.POLICY.fold_binary(
            "Message-ID", mime.POLICY.header_factory("Message-ID", value)
        )
        assert ours == library


def test_single_headers_stay_single() -> None:
    """The cached header_max_count still refuses a second Subject."""
    message = mime.new_message()
    message["Subject"] = "eins"
    with pytest.raises(ValueError, match="Subject"):
        message["Subject"] = "zwei"
    message["Comments"] = "a"
    message["Comments"] = "b"  # no limit: both kept
    assert message.get_all("Comments") == ["a", "b"]
