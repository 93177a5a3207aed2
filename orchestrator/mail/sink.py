"""The local mail sink as the organiser sees it: the .eml files, newest first."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from orchestrator.errors import NotFoundError

# What SinkTransport writes: no path separators, no leading dot, nothing to escape.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.eml")
_LINE_END = re.compile(r"\r\n?")


@dataclass(frozen=True)
class SinkEntry:
    """One message in the sink, with the headers an organiser looks for."""

    name: str
    date: datetime
    recipient: str
    subject: str
    size: int


# What a malformed header can make the email package raise while parsing it.
_HEADER_ERRORS = (ValueError, LookupError, TypeError, AttributeError, MessageError)


def _raw_header(message: EmailMessage, key: str) -> str:
    """A header's encoded words decoded without parsing its structure (never raises)."""
    raw = next((value for name, value in message.raw_items() if name.lower() == key.lower()), "")
    try:
        return str(make_header(decode_header(raw)))
    except _HEADER_ERRORS:
        return raw


def _header_text(message: EmailMessage, key: str) -> str:
    """A header as text; one the parser refuses (e.g. an encoded CR/LF in an address's
    display name) is still shown, decoded, rather than failing the whole listing."""
    try:
        return str(message.get(key, "") or "")
    except _HEADER_ERRORS:
        return _raw_header(message, key)


def _headers(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle, headersonly=True)
    return {key: _header_text(message, key) for key in ("Delivered-To", "To", "Subject", "Date")}


def _date(value: str, path: Path) -> datetime:
    """The Date header in UTC; else the time in the file name; else the file's mtime."""
    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    try:
        return datetime.strptime(path.name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _entry(path: Path) -> SinkEntry:
    headers = _headers(path)
    return SinkEntry(
        name=path.name,
        date=_date(headers["Date"], path),
        recipient=headers["Delivered-To"] or headers["To"],
        subject=headers["Subject"],
        size=path.stat().st_size,
    )


def _paths(directory: Path) -> list[Path]:
    """The sink's message files, newest first (their names start with the UTC date)."""
    if not directory.is_dir():
        return []
    found = (path for path in directory.iterdir() if _NAME.fullmatch(path.name))
    return sorted(found, key=lambda path: path.name, reverse=True)


def _entries(paths: list[Path]) -> list[SinkEntry]:
    entries = []
    for path in paths:
        try:
            entries.append(_entry(path))
        except OSError:  # deleted while we were listing
            continue
    return entries


def list_messages(directory: Path, limit: int = 200) -> list[SinkEntry]:
    """The newest `limit` messages in the sink (an absent folder is an empty sink)."""
    return _entries(_paths(directory)[: max(limit, 0)])


@dataclass(frozen=True)
class SinkPage:
    """Some of the sink's messages, newest first, and how many there are in all."""

    entries: list[SinkEntry]
    total: int


def page_of_messages(directory: Path, offset: int, limit: int) -> SinkPage:
    """The messages from `offset` (0: the newest) on, at most `limit`, and the total."""
    paths = _paths(directory)
    start = max(offset, 0)
    return SinkPage(_entries(paths[start : start + max(limit, 0)]), len(paths))


def message_path(directory: Path, name: str) -> Path:
    """The file of one sink message; names that could leave the folder are refused."""
    path = directory / name
    if not _NAME.fullmatch(name) or path.resolve().parent != directory.resolve():
        raise NotFoundError(f"Nachricht {name!r} nicht gefunden.")
    if not path.is_file():
        raise NotFoundError(f"Nachricht {name!r} nicht gefunden.")
    return path


def read_message(directory: Path, name: str) -> bytes:
    """The raw .eml bytes of one sink message."""
    return message_path(directory, name).read_bytes()


@dataclass(frozen=True)
class SinkPart:
    """One leaf part of a message: its type, file name (if any) and decoded size."""

    content_type: str
    filename: str
    size: int
    attachment: bool


@dataclass(frozen=True)
class SinkMessage:
    """One sink message taken apart for reading: headers, plain text, the list of parts."""

    entry: SinkEntry
    sender: str
    to: str
    text: str | None  # the plain-text body; None when the message has none
    has_html: bool
    parts: list[SinkPart]


def _decoded(part: EmailMessage) -> str:
    """A text part's content; an unknown charset or bad bytes never stop the reading."""
    raw = part.get_payload(decode=True)
    payload = raw if isinstance(raw, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return _LINE_END.sub("\n", payload.decode(charset, errors="replace"))


def _part(part: EmailMessage) -> SinkPart:
    raw = part.get_payload(decode=True)
    return SinkPart(
        content_type=part.get_content_type(),
        filename=part.get_filename() or "",
        size=len(raw) if isinstance(raw, bytes) else 0,
        attachment=part.get_content_disposition() == "attachment",
    )


def open_message(directory: Path, name: str) -> SinkMessage:
    """One sink message with its headers, plain-text body and parts (its HTML is not read)."""
    path = message_path(directory, name)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return SinkMessage(
        entry=_entry(path),
        sender=_header_text(message, "From"),
        to=_header_text(message, "To"),
        text=_decoded(text) if isinstance(text, EmailMessage) else None,
        has_html=html is not None,
        parts=[_part(part) for part in message.walk() if not part.is_multipart()],
    )


def html_of(directory: Path, name: str) -> str | None:
    """The HTML body of one sink message (None when it has none), for a sandboxed frame only."""
    path = message_path(directory, name)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    html = message.get_body(preferencelist=("html",))
    return _decoded(html) if isinstance(html, EmailMessage) else None
