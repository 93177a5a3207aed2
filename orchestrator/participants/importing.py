"""Participant lists as organisers keep them (CSV as Excel writes it, XLSX) into people.

All rows or none (unless only the good rows are wanted); every bad row is reported
with the row number Excel shows and a German reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from typing import Any

from openpyxl import load_workbook
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from orchestrator.conferences.models import Conference, Forum
from orchestrator.db import utcnow
from orchestrator.errors import ImportRejectedError, InvalidInputError
from orchestrator.participants.columns import (
    EMPTY_VALUES,
    FORUM_COLUMNS,
    LABELS,
    VALUE_ALIASES,
    column_of,
    norm,
)
from orchestrator.participants.models import ForumChoice, Person
from orchestrator.participants.schemas import PersonIn

log = logging.getLogger(__name__)

Row = tuple[int, dict[str, str]]
_IN_CHUNK = 500  # bound parameters per IN list, well below SQLite's and asyncpg's limits
_TEXT_FIELDS = ("first_name", "last_name", "organisation")


@dataclass
class RowError:
    row: int  # as Excel shows it: header = 1, first data row = 2
    field: str | None  # canonical column name when known
    reason: str  # German, user-facing


@dataclass
class ImportReport:
    rows: int
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-friendly data, for the API and the CLI."""
        return asdict(self)

    def summary(self) -> str:
        """One German line: what was done, or why nothing was."""
        if self.applied or not self.errors:
            done = f"{self.created} neu, {self.updated} aktualisiert, {self.skipped} übersprungen"
            return f"{self.rows} Zeilen gelesen: {done}."
        shown = "; ".join(f"Zeile {e.row}: {e.reason}" for e in self.errors[:3])
        more = " …" if len(self.errors) > 3 else ""
        return f"Nichts übernommen, {self.skipped} von {self.rows} Zeilen fehlerhaft: {shown}{more}"


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _xlsx_records(filename: str, data: bytes) -> list[list[str]]:
    try:
        with closing(load_workbook(io.BytesIO(data), read_only=True, data_only=True)) as book:
            sheet = book.worksheets[0]
            sheet.reset_dimensions()  # some writers store wrong sheet dimensions
            cells = sheet.iter_rows(min_row=1, min_col=1, values_only=True)
            return [[_cell_text(value) for value in row] for row in cells]
    except Exception:  # openpyxl raises many different types for damaged files
        raise InvalidInputError(f"{filename}: keine lesbare Excel-Datei (.xlsx).") from None


def _decode(filename: str, data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")  # Excel's "Unicode-Text"
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise InvalidInputError(
        f"{filename}: Zeichenkodierung nicht erkannt; bitte als CSV (UTF-8) oder .xlsx speichern."
    )


def _delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most columns (Excel DE: ';')."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return max((";", ",", "\t"), key=lambda d: len(next(csv.reader([header], delimiter=d), [])))


def _csv_records(filename: str, data: bytes) -> list[list[str]]:
    text = _decode(filename, data)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    except csv.Error as error:
        raise InvalidInputError(f"{filename}: CSV nicht lesbar ({error}).") from None


def _columns(filename: str, header: list[str]) -> list[str | None]:
    columns = [column_of(name) for name in header]
    known = [column for column in columns if column]
    doubled = sorted({column for column in known if known.count(column) > 1})
    if doubled:
        names = ", ".join(LABELS[column] for column in doubled)
        raise InvalidInputError(f"{filename}: Spalte doppelt vorhanden: {names}.")
    if "email" not in known:
        raise InvalidInputError(f"{filename}: keine Spalte für die E-Mail-Adresse ('E-Mail').")
    return columns


def _row_values(columns: list[str | None], cells: list[str]) -> dict[str, str]:
    return {
        column: cells[i] if i < len(cells) else "" for i, column in enumerate(columns) if column
    }


@dataclass
class Sheet:
    """A read file: its header cells, the column each one names (None: not recognised),
    and the data rows."""

    header: list[str]
    columns: list[str | None]
    rows: list[Row]


def read_sheet(filename: str, data: bytes) -> Sheet:
    """A CSV or XLSX file as header and rows (Excel row number, {canonical column: text})."""
    is_xlsx = filename.lower().endswith((".xlsx", ".xlsm")) or data.startswith(b"PK\x03\x04")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInputError(f"{filename}: altes Excel-Format .xls; bitte als .xlsx speichern.")
    table = _xlsx_records(filename, data) if is_xlsx else _csv_records(filename, data)
    # Excel's row number counts blank rows too; the rows we keep have a non-blank cell.
    records = ((n, cells) for n, cells in enumerate(table, 1) if any(c.strip() for c in cells))
    first = next(records, None)
    if first is None:
        raise InvalidInputError(f"{filename}: die Datei ist leer.")
    columns = _columns(filename, first[1])
    rows = [(number, _row_values(columns, cells)) for number, cells in records]
    if not rows:
        raise InvalidInputError(f"{filename}: keine Datenzeilen unter der Kopfzeile.")
    return Sheet(first[1], columns, rows)


def read_table(filename: str, data: bytes) -> list[Row]:
    """Rows of a CSV or XLSX file as (Excel row number, {canonical column: text})."""
    return read_sheet(filename, data).rows


def _candidate(values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """PersonIn input for the columns present, and the column of each forum choice."""
    data: dict[str, Any] = {}
    if values.get("email", "").strip():
        data["email"] = values["email"].strip()
    for column in _TEXT_FIELDS:
        if column in values:
            data[column] = values[column]
    for column, aliases in VALUE_ALIASES.items():
        if column in values:
            key = norm(values[column])
            data[column] = aliases.get(key, values[column].strip()) if key else EMPTY_VALUES[column]
    choice_columns = [c for c in FORUM_COLUMNS if values.get(c, "").strip()]
    if any(column in values for column in FORUM_COLUMNS):
        data["forum_choices"] = [values[c].strip().lower() for c in choice_columns]
    return data, choice_columns


def _reason(problem: ErrorDetails, label: str) -> str:
    kind, ctx, value = problem["type"], problem.get("ctx") or {}, problem.get("input")
    if kind == "missing":
        return f"{label} fehlt"
    if kind == "string_too_long":
        return f"{label} zu lang ({len(str(value))} Zeichen, höchstens {ctx['max_length']})"
    if kind == "string_pattern_mismatch":
        return f"{label}: unbekanntes Forum {value!r}"
    if kind in ("enum", "bool_parsing"):
        return f"{label}: unbekannter Wert {value!r}"
    if kind == "value_error" and label == LABELS["email"]:
        return f"{label} ungültig: {ctx.get('reason', problem['msg'])}"
    if kind == "value_error":
        return f"{label}: {ctx.get('error', problem['msg'])}"
    return f"{label}: {problem['msg']}"


def _problem_column(problem: ErrorDetails, choice_columns: list[str]) -> str | None:
    location = problem["loc"]
    if not location or location[0] != "forum_choices":
        return str(location[0]) if location else None
    if len(location) > 1 and isinstance(location[1], int):
        return choice_columns[location[1]]
    return choice_columns[-1] if choice_columns else FORUM_COLUMNS[0]


def _field_errors(number: int, error: ValidationError, choices: list[str]) -> list[RowError]:
    located = [(problem, _problem_column(problem, choices)) for problem in error.errors()]
    return [
        RowError(number, column, _reason(problem, LABELS.get(column or "", "Zeile")))
        for problem, column in located
    ]


def _forum_errors(
    number: int, person: PersonIn, choice_columns: list[str], forum_keys: set[str]
) -> list[RowError]:
    known = ", ".join(sorted(forum_keys))
    return [
        RowError(number, column, f"{LABELS[column]}: unbekanntes Forum {key!r} (bekannt: {known})")
        for column, key in zip(choice_columns, person.forum_choices, strict=True)
        if key not in forum_keys
    ]


def _check_row(
    number: int, values: dict[str, str], forum_keys: set[str]
) -> tuple[PersonIn | None, list[RowError]]:
    data, choice_columns = _candidate(values)
    try:
        person = PersonIn.model_validate(data)
    except ValidationError as error:
        return None, _field_errors(number, error, choice_columns)
    return person, _forum_errors(number, person, choice_columns, forum_keys)


def validate_rows(
    rows: Sequence[Row], forum_keys: set[str]
) -> tuple[list[tuple[int, PersonIn]], list[RowError]]:
    """The good rows as PersonIn, and one RowError per problem of each bad row."""
    good: list[tuple[int, PersonIn]] = []
    errors: list[RowError] = []
    first_row: dict[str, int] = {}
    for number, values in rows:
        person, problems = _check_row(number, values, forum_keys)
        email = person.email if person else values.get("email", "").strip().lower()
        if email and email in first_row:
            reason = f"E-Mail-Adresse {email} doppelt, schon in Zeile {first_row[email]}"
            problems.append(RowError(number, "email", reason))
        elif email:
            first_row[email] = number
        if person is not None and not problems:
            good.append((number, person))
        errors.extend(problems)
    return good, errors


async def _existing(
    session: AsyncSession, conference: Conference, emails: list[str]
) -> dict[str, Person]:
    """People of the conference with these (normalised) emails, in chunked IN queries."""
    found: dict[str, Person] = {}
    for start in range(0, len(emails), _IN_CHUNK):
        chunk = emails[start : start + _IN_CHUNK]
        where = (Person.conference_id == conference.id, Person.email.in_(chunk))
        statement = select(Person).where(*where).options(selectinload(Person.choices))
        found.update((p.email, p) for p in (await session.execute(statement)).scalars())
    return found


def _apply_fields(person: Person, item: PersonIn) -> None:
    """Copy the fields the file had a column for; consent also stamps consent_at."""
    for name in item.model_fields_set - {"email", "forum_choices", "consent"}:
        setattr(person, name, getattr(item, name))
    if "consent" in item.model_fields_set and item.consent != bool(person.consent):
        person.consent = item.consent
        person.consent_at = utcnow()  # given or withdrawn: either way, when


def _new_person(conference: Conference, item: PersonIn, forums: dict[str, Forum]) -> Person:
    return Person(
        conference_id=conference.id,
        **item.model_dump(exclude={"forum_choices"}),
        consent_at=utcnow() if item.consent else None,
        choices=_choices(item, forums),
        assignments=[],
    )


def _choices(item: PersonIn, forums: dict[str, Forum]) -> list[ForumChoice]:
    return [
        ForumChoice(forum_id=forums[key].id, rank=rank)
        for rank, key in enumerate(item.forum_choices, start=1)
    ]


def _choices_changed(person: Person, item: PersonIn, forums: dict[str, Forum]) -> bool:
    if "forum_choices" not in item.model_fields_set:
        return False
    wanted = [forums[key].id for key in item.forum_choices]
    return wanted != [choice.forum_id for choice in person.choices]


async def _write(
    session: AsyncSession, conference: Conference, forums: dict[str, Forum], people: list[PersonIn]
) -> tuple[int, int]:
    """Create the new people, update the known ones; (created, updated)."""
    existing = await _existing(session, conference, [item.email for item in people])
    replace: list[tuple[Person, PersonIn]] = []
    for item in people:
        person = existing.get(item.email)
        if person is None:
            session.add(_new_person(conference, item, forums))
            continue
        _apply_fields(person, item)
        if _choices_changed(person, item, forums):
            person.choices.clear()
            replace.append((person, item))
    if replace:  # the unit of work inserts before it deletes: drop the old ranks first
        await session.flush()
    for person, item in replace:
        person.choices.extend(_choices(item, forums))
    await session.flush()
    return len(people) - len(existing), len(existing)


async def import_rows(
    session: AsyncSession, conference: Conference, rows: Sequence[Row], *, skip_invalid: bool
) -> ImportReport:
    """Create or update the conference's people from rows; all-or-nothing unless skipping."""
    statement = select(Forum).where(Forum.conference_id == conference.id)
    forums = {forum.key: forum for forum in (await session.execute(statement)).scalars()}
    good, errors = validate_rows(rows, set(forums))
    report = ImportReport(rows=len(rows), skipped=len({e.row for e in errors}), errors=errors)
    if errors and not skip_invalid:
        log.info("participants.import_rejected", extra={"conference": conference.slug})
        raise ImportRejectedError(report.summary(), details=report.as_dict())
    if good:
        people = [item for _, item in good]
        report.created, report.updated = await _write(session, conference, forums, people)
        report.applied = True
    counts = {"new_people": report.created, "updated_people": report.updated}
    log.info("participants.imported", extra={"conference": conference.slug, **counts})
    return report


async def import_file(
    session: AsyncSession, conference: Conference, filename: str, data: bytes, *, skip_invalid: bool
) -> ImportReport:
    """Import a CSV or XLSX participant list into the conference (the caller commits)."""
    return await import_rows(
        session, conference, read_table(filename, data), skip_invalid=skip_invalid
    )
