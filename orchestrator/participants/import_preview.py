"""What an import would do, shown before anything is stored; and the file kept meanwhile.

The organiser uploads a list, sees which columns were recognised (and as what), which were
not, and every bad row; only then imports it. Between the two steps the file waits in the
data directory under a random name, bound to its conference, for at most an hour.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import NotFoundError
from orchestrator.participants.columns import LABELS
from orchestrator.participants.importing import RowError, read_sheet, validate_rows

KEEP_SECONDS = 3600
MAX_BYTES = 5 * 1024 * 1024
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(frozen=True)
class HeaderMatch:
    """One header cell: its column letter, its text, and the field it names (or None)."""

    letter: str
    header: str
    column: str | None

    @property
    def label(self) -> str:
        return LABELS.get(self.column or "", "")


@dataclass
class Preview:
    filename: str
    headers: list[HeaderMatch]
    rows: int
    good: int
    errors: list[RowError] = field(default_factory=list)

    @property
    def unknown(self) -> list[HeaderMatch]:
        return [match for match in self.headers if match.column is None and match.header.strip()]

    @property
    def bad_rows(self) -> int:
        return len({error.row for error in self.errors})


def column_letter(index: int) -> str:
    """Excel's name of the column at a 0-based index: A … Z, AA, AB …"""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def preview(filename: str, data: bytes, forum_keys: set[str]) -> Preview:
    """Read and check a file without storing anything (errors as importing raises them)."""
    sheet = read_sheet(filename, data)
    headers = [
        HeaderMatch(column_letter(i), text.strip(), column)
        for i, (text, column) in enumerate(zip(sheet.header, sheet.columns, strict=True))
    ]
    good, errors = validate_rows(sheet.rows, forum_keys)
    return Preview(filename, headers, len(sheet.rows), len(good), errors)


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


class UploadStore:
    """Uploaded lists waiting for the organiser's "import": one file and its facts each."""

    def __init__(self, directory: Path, keep_seconds: int = KEEP_SECONDS) -> None:
        self.directory = directory
        self.keep_seconds = keep_seconds

    def _paths(self, name: str) -> tuple[Path, Path]:
        if not (20 <= len(name) <= 64 and set(name) <= _NAME_CHARS):
            raise NotFoundError("Die hochgeladene Datei ist nicht mehr vorhanden.")
        return self.directory / f"{name}.upload", self.directory / f"{name}.json"

    def purge(self, now: float | None = None) -> None:
        """Delete what has waited longer than allowed."""
        if not self.directory.is_dir():
            return
        limit = (now or time.time()) - self.keep_seconds
        for path in self.directory.iterdir():
            if path.suffix in (".upload", ".json") and path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)

    def put(self, conference_id: int, filename: str, data: bytes) -> str:
        """Keep a file for a conference; its random name."""
        self.purge()
        self.directory.mkdir(parents=True, exist_ok=True)
        name = secrets.token_urlsafe(24)
        content, facts = self._paths(name)
        content.write_bytes(data)
        safe_name = "".join(c for c in filename if c.isprintable())[:200] or "upload.csv"
        facts.write_text(json.dumps({"conference": conference_id, "filename": safe_name}))
        return name

    def get(self, conference_id: int, name: str) -> Upload:
        """A kept file of this conference (NotFoundError when gone, expired or another's)."""
        self.purge()
        content, facts = self._paths(name)
        try:
            meta = json.loads(facts.read_text())
            data = content.read_bytes()
        except (OSError, ValueError):
            raise NotFoundError("Die hochgeladene Datei ist nicht mehr vorhanden.") from None
        if meta.get("conference") != conference_id:
            raise NotFoundError("Die hochgeladene Datei ist nicht mehr vorhanden.")
        return Upload(str(meta.get("filename", "upload.csv")), data)

    def drop(self, name: str) -> None:
        """Delete a kept file (after its import)."""
        for path in self._paths(name):
            path.unlink(missing_ok=True)
