"""Rendering mail from templates and wrapping it into a MIME message (no sending here).

Templates live in `mail/templates/`, one per mail kind and language and format:
`{kind}.{language}.txt` and `{kind}.{language}.html`. The subject is the `subject` block of
the `.txt` template (plain text, never autoescaped); it is collapsed to one line and handed
to the `.html` template as `subject` (its <title>). Autoescaping is on for `.html` only.
`calendar.{language}.txt` holds the texts of one calendar event (summary, location,
description blocks).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from orchestrator.conferences.wording import organiser_nominative
from orchestrator.mail.addresses import split
from orchestrator.mail.mime import header, new_message
from orchestrator.timezones import zone_name

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
KINDS = ("invitation", "update", "cancellation")
STAFF_KINDS = ("staff_link",)  # mail to staff accounts, not about a conference
NOTICE_KINDS = ("waitlisted", "seat_offered")  # a person's place on a waiting list
LANGUAGES = ("de", "en")
CALENDAR_METHODS = ("REQUEST", "CANCEL")

_WEEKDAYS = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "en": "January February March April May June July August September October November December",
}
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Rendered:
    """A rendered mail: one-line subject, plain text and HTML body."""

    subject: str
    text: str
    html: str


def one_line(text: str) -> str:
    """Collapse any line break, tab or run of spaces to one space; drop control characters."""
    return _CONTROL.sub("", " ".join(text.split()))


def long_date(moment: datetime, language: str) -> str:
    """'Donnerstag, 18. März 2027' or 'Thursday, 18 March 2027'."""
    return _long_date(moment.date(), language)


@lru_cache(maxsize=256)
def _long_date(moment: date, language: str) -> str:
    weekday = _WEEKDAYS[language][moment.weekday()]
    month = _MONTHS[language].split()[moment.month - 1]
    separator = ". " if language == "de" else " "
    return f"{weekday}, {moment.day}{separator}{month} {moment.year}"


def clock(moment: datetime) -> str:
    """'09:30' (24-hour clock, as written in both languages here)."""
    return moment.strftime("%H:%M")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment over mail/templates (autoescape for .html only)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["long_date"] = long_date
    env.filters["clock"] = clock
    env.filters["one_line"] = one_line
    env.filters["zone_name"] = zone_name
    env.filters["organiser_nominative"] = organiser_nominative
    return env


def _template(kind: str, language: str, extension: str) -> Template:
    if kind not in (*KINDS, *STAFF_KINDS, *NOTICE_KINDS) or language not in LANGUAGES:
        raise ValueError(f"no mail template {kind}.{language}")
    return environment().get_template(f"{kind}.{language}.{extension}")


def _block(template: Template, name: str, context: Mapping[str, Any]) -> str:
    [text] = _blocks(template, (name,), context)
    return text


def _blocks(template: Template, names: tuple[str, ...], context: Mapping[str, Any]) -> list[str]:
    """Render several blocks of a template over one context (made once: it is not cheap)."""
    shared = template.new_context(dict(context))
    return ["".join(template.blocks[name](shared)) for name in names]


def _tidy(text: str) -> str:
    """At most one empty line in a row, no trailing spaces, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def render(kind: str, language: str, context: Mapping[str, Any]) -> Rendered:
    """Render a mail kind in a language; the subject comes from the .txt `subject` block."""
    text_template = _template(kind, language, "txt")
    subject = one_line(_block(text_template, "subject", context))
    if not subject:
        raise ValueError(f"mail template {kind}.{language}.txt has an empty subject")
    text = _tidy(text_template.render(context))
    html = _template(kind, language, "html").render({**context, "subject": subject})
    return Rendered(subject=subject, text=text, html=html)


@dataclass(frozen=True)
class EventText:
    """The words of one calendar event in one language."""

    summary: str
    location: str
    description: str


def render_event(language: str, context: Mapping[str, Any]) -> EventText:
    """Render the summary, location and description blocks of `calendar.{language}.txt`."""
    if language not in LANGUAGES:
        raise ValueError(f"no calendar texts in {language!r}")
    template = environment().get_template(f"calendar.{language}.txt")
    summary, location, description = _blocks(
        template, ("summary", "location", "description"), context
    )
    return EventText(
        summary=one_line(summary),
        location=one_line(location),
        description=_tidy(description).strip(),
    )


def mailbox(name: str, email: str) -> Address:
    """An Address whose display name cannot carry a line break into a header; the domain as
    IDNA, a non-ASCII local part kept (the outbox writes such a message's headers in UTF-8).
    ValueError for anything that is not one plain address."""
    local, domain = split(email)
    return Address(display_name=one_line(name), username=local, domain=domain)


def message_domain(sender: str) -> str:
    """The domain of the sender's address (for Message-IDs and UIDs); 'localhost' if none."""
    domain = parseaddr(sender)[1].rpartition("@")[2].strip().lower()
    return domain if _DOMAIN.fullmatch(domain) else "localhost"


def _leaf(content_type: str, payload: str, cte: str, disposition: str = "") -> EmailMessage:
    """A non-multipart part with an already encoded payload."""
    part = new_message()
    part["Content-Type"] = header("Content-Type", content_type)
    part["Content-Transfer-Encoding"] = header("Content-Transfer-Encoding", cte)
    if disposition:
        part["Content-Disposition"] = header("Content-Disposition", disposition)
    part.set_payload(payload)
    return part


def _text(text: str, subtype: str) -> EmailMessage:
    """text/plain or text/html in UTF-8, quoted-printable (7-bit safe, still readable)."""
    normal = "\n".join(text.splitlines()) + "\n"
    encoded = binascii.b2a_qp(normal.encode("utf-8"), istext=True).decode("ascii")
    return _leaf(f'text/{subtype}; charset="utf-8"', encoded, "quoted-printable")


# Base64 and quoted-printable output never contains "=_", so a boundary that starts with
# it cannot clash with any part; it need not change from mail to mail. One per process,
# so that the header is parsed and folded once.
_BOUNDARY = f"=_{secrets.token_hex(12)}"


def _multipart(subtype: str, parts: list[EmailMessage]) -> EmailMessage:
    container = new_message()
    boundary = f"{_BOUNDARY}.{subtype}"
    container["Content-Type"] = header(
        "Content-Type", f'multipart/{subtype}; boundary="{boundary}"'
    )
    for part in parts:
        container.attach(part)
    return container


def _calendar_parts(calendar: bytes, method: str) -> tuple[EmailMessage, EmailMessage]:
    """The iMIP part for the alternative (Outlook, Gmail) and invite.ics (Apple, others)."""
    if method not in CALENDAR_METHODS:
        raise ValueError(f"unsupported calendar method: {method!r}")
    encoded = base64.encodebytes(calendar).decode("ascii")  # keeps CRLF and folding exact
    inline = _leaf(f'text/calendar; method="{method}"; charset="UTF-8"', encoded, "base64")
    # application/ics: clients that act on text/calendar parts do not see a second invite.
    attachment = _leaf(
        'application/ics; name="invite.ics"',
        encoded,
        "base64",
        disposition='attachment; filename="invite.ics"',
    )
    return inline, attachment


def _headers(
    message: EmailMessage,
    subject: str,
    *,
    sender: str,
    recipient: Address,
    language: str,
    reply_to: str | None,
) -> None:
    message["From"] = header("From", sender)
    if one_line(recipient.display_name) != recipient.display_name:  # not made by mailbox()
        recipient = mailbox(recipient.display_name, recipient.addr_spec)
    message["To"] = recipient
    if reply_to:
        message["Reply-To"] = header("Reply-To", reply_to)
    message["Subject"] = header("Subject", one_line(subject))
    # RFC 3834: machine-generated; Exchange: no out-of-office replies to these.
    message["Auto-Submitted"] = header("Auto-Submitted", "auto-generated")
    message["X-Auto-Response-Suppress"] = header("X-Auto-Response-Suppress", "OOF")
    message["Content-Language"] = header("Content-Language", language)
    message["MIME-Version"] = header("MIME-Version", "1.0")


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    recipient: Address,
    calendar: bytes | None,
    method: str | None,
    language: str,
    reply_to: str | None = None,
) -> EmailMessage:
    """multipart/mixed[alternative[text, html, calendar], invite.ics]; without a calendar
    just multipart/alternative[text, html]. Message-ID and Date come from the outbox."""
    bodies = [_text(rendered.text, "plain"), _text(rendered.html, "html")]
    if calendar is None:
        message = _multipart("alternative", bodies)
    else:
        inline, attachment = _calendar_parts(calendar, method or "")
        message = _multipart("mixed", [_multipart("alternative", [*bodies, inline]), attachment])
    _headers(
        message,
        rendered.subject,
        sender=sender,
        recipient=recipient,
        language=language,
        reply_to=reply_to,
    )
    return message
