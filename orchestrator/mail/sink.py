"""The local mail sink as the organiser sees it: the .eml files, newest first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from orchestrator.errors import NotFoundError

# What SinkTransport writes: no path separators, no leading dot, nothing to escape.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.eml")


@dataclass(frozen=True)
class SinkEntry:
    """One message in the sink, with the headers an organiser looks for."""

    name: str
    date: datetime
    recipient: str
    subject: str
    size: int


def _headers(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle, headersonly=True)
    return {
        key: str(message.get(key, "") or "") for key in ("Delivered-To", "To", "Subject", "Date")
    }


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


def list_messages(directory: Path, limit: int = 200) -> list[SinkEntry]:
    """The newest `limit` messages in the sink (an absent folder is an empty sink)."""
    if not directory.is_dir():
        return []
    names = sorted(
        (path for path in directory.iterdir() if _NAME.fullmatch(path.name)),
        key=lambda path: path.name,
        reverse=True,
    )
    entries = []
    for path in names[: max(limit, 0)]:
        try:
            entries.append(_entry(path))
        except OSError:  # deleted while we were listing
            continue
    return entries


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
