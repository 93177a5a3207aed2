"""Attendance lists for organisers: CSV and XLSX with one row per person and session.

The CSV is UTF-8 with a byte order mark and `;` between fields, CRLF line ends: German
Excel uses `;` as its list separator (`,` is the decimal comma) and, without the BOM,
reads a CSV as Windows-1252, which garbles umlauts. Both files neutralise text a
spreadsheet would take for a formula (leading `=`, `+`, `-`, `@`, tab, CR, and their
full-width forms) with a leading `'` (OWASP "CSV injection"); in the XLSX every text cell
is also typed as a string, so it is never stored as a formula. Times are the conference's
local wall-clock times.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from orchestrator.attendance.models import AttendanceStatus
from orchestrator.attendance.reconcile import Source
from orchestrator.attendance.table import Row
from orchestrator.conferences.models import SessionKind
from orchestrator.participants.models import AttendanceMode

Cell = str | int | datetime | None

HEADERS = (
    "Name",
    "Organisation",
    "Forum",
    "Sitzung",
    "Teilnahmeform",
    "Erfasst über",
    "Erster Beitritt",
    "Letztes Verlassen",
    "Minuten",
    "Status",
    "Begründung",
)
SUMMARY_HEADERS = (
    "Forum",
    "Erwartet",
    "Anwesend",
    "Teilweise",
    "Abwesend",
    "Entschuldigt",
    "Minuten",
)
STATUS_LABELS = {
    AttendanceStatus.PRESENT: "anwesend",
    AttendanceStatus.PARTIAL: "teilweise",
    AttendanceStatus.ABSENT: "abwesend",
    AttendanceStatus.EXCUSED: "entschuldigt",
}
MODE_LABELS = {
    AttendanceMode.ONLINE: "online",
    AttendanceMode.IN_PERSON: "vor Ort",
    AttendanceMode.UNDECIDED: "offen",
}
SOURCE_LABELS = {
    Source.VIDEO: "Video",
    Source.IN_PERSON: "Check-in vor Ort",
    Source.BOTH: "Video und Check-in",
    Source.NONE: "",
}
NO_FORUM = "(ohne Forum)"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
TIME_FORMAT = "%d.%m.%Y %H:%M"
XLSX_TIME_FORMAT = "DD.MM.YYYY HH:MM"
WIDTHS = (28, 28, 28, 28, 14, 18, 17, 17, 9, 13, 40)
SUMMARY_WIDTHS = (50, 10, 10, 10, 10, 12, 10)


@dataclass
class ForumSummary:
    """Counts of one forum over the rows of its breakout round."""

    key: str
    title: str
    expected: int = 0
    present: int = 0
    partial: int = 0
    absent: int = 0
    excused: int = 0
    minutes: int = 0

    def add(self, row: Row) -> None:
        self.expected += row.expected
        self.minutes += row.record.minutes
        name = row.record.status.value
        setattr(self, name, getattr(self, name) + 1)

    def cells(self) -> list[Cell]:
        return [
            self.title,
            self.expected,
            self.present,
            self.partial,
            self.absent,
            self.excused,
            self.minutes,
        ]


CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download_name(slug: str, extension: str) -> str:
    """A file name safe in a Content-Disposition header: `<slug>-anwesenheit.<extension>`."""
    safe = re.sub(r"[^a-z0-9-]+", "-", slug.lower()).strip("-") or "konferenz"
    return f"{safe}-anwesenheit.{extension}"


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as typed, never runs: formula-like starts get a `'`."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def summary(rows: Iterable[Row]) -> list[ForumSummary]:
    """Per forum (breakout rounds only): expected, each status, minutes; by title."""
    forums: dict[str, ForumSummary] = {}
    for row in rows:
        if row.session_kind is not SessionKind.BREAKOUT_ROUND:
            continue
        key = row.forum_key or ""
        forums.setdefault(key, ForumSummary(key, row.forum_title or NO_FORUM)).add(row)
    return sorted(forums.values(), key=lambda forum: (forum.key == "", forum.title.casefold()))


def cells(row: Row) -> list[Cell]:
    """One row's values in HEADERS order, text not yet neutralised."""
    record = row.record
    return [
        row.name,
        row.organisation,
        row.forum_title or "",
        row.session_title,
        MODE_LABELS[row.mode],
        SOURCE_LABELS[record.source],
        record.first_join,
        record.last_leave,
        record.minutes,
        STATUS_LABELS[record.status],
        record.reason or "",
    ]


def _csv_value(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    return neutralise(value) if isinstance(value, str) else str(value)


def to_csv(rows: Iterable[Row]) -> bytes:
    """The attendance list as CSV for German Excel (UTF-8 with BOM, `;`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows([_csv_value(value) for value in cells(row)] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def _write(sheet: Worksheet, row_number: int, values: Sequence[Cell]) -> None:
    for column, value in enumerate(values, start=1):
        cell = sheet.cell(row=row_number, column=column)
        if isinstance(value, str):
            cell.value = neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
            cell.data_type = "s"  # text, whatever it looks like: never a formula
        elif isinstance(value, datetime):
            cell.value = value.replace(tzinfo=None)  # Excel has no time zones: local time
            cell.number_format = XLSX_TIME_FORMAT
        else:
            cell.value = value


def _fill(
    sheet: Worksheet,
    headers: Sequence[str],
    lines: Iterable[Sequence[Cell]],
    widths: Sequence[int],
) -> None:
    _write(sheet, 1, headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    number = 1
    for number, values in enumerate(lines, start=2):
        _write(sheet, number, values)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{number}"
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


def to_xlsx(rows: Iterable[Row], forums: Iterable[ForumSummary]) -> bytes:
    """The workbook: sheet "Anwesenheit" (one row per person and session), sheet "Foren"."""
    book = Workbook()
    people = book.active
    assert isinstance(people, Worksheet)
    people.title = "Anwesenheit"
    _fill(people, HEADERS, (cells(row) for row in rows), WIDTHS)
    lines = (forum.cells() for forum in forums)
    _fill(book.create_sheet("Foren"), SUMMARY_HEADERS, lines, SUMMARY_WIDTHS)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
