"""Participant import: CSV as German Excel writes it, XLSX, bad rows, re-imports, scripts."""

from __future__ import annotations

import csv
import io
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from orchestrator.conferences.models import Conference
from orchestrator.conferences.service import import_file as import_conference
from orchestrator.errors import ImportRejectedError, InvalidInputError
from orchestrator.participants import importing
from orchestrator.participants.importing import (
    ImportReport,
    RowError,
    import_file,
    read_table,
    validate_rows,
)
from orchestrator.participants.models import AttendanceMode, ForumChoice, Language, Person, Role
from tests.conftest import SAMPLE_TOML, SHARED_DATA

pytestmark = pytest.mark.asyncio

FORUMS = {"sprache", "werte", "bildung", "arbeit", "bleibeperspektive"}
HEADER = "email|first_name|last_name|organisation|forum_choice_1|forum_choice_2"
GERMAN_HEADER = (
    "E-Mail|Vorname|Nachname|Organisation|Rolle|Teilnahmeform|Sprache|Erstwunsch|Zweitwunsch"
    "|Einwilligung"
)


def table(*lines: str) -> list[list[str]]:
    """Rows written as 'a|b|c' (no cell in these tests contains a bar)."""
    return [line.split("|") for line in lines]


def excel_csv(rows: list[list[str]], *, delimiter: str = ";", encoding: str = "utf-8-sig") -> bytes:
    """Bytes as Excel saves a sheet: CRLF lines, minimal quoting, the given encoding."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def excel_xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def sample_conference(session: AsyncSession) -> Conference:
    outcome = await import_conference(session, SAMPLE_TOML)
    await session.commit()
    return outcome.conference


async def import_path(
    session: AsyncSession, conference: Conference, path: Path, *, skip_invalid: bool = False
) -> ImportReport:
    data = path.read_bytes()
    return await import_file(session, conference, path.name, data, skip_invalid=skip_invalid)


async def stored_people(
    sessions: async_sessionmaker[AsyncSession], conference: Conference
) -> dict[str, Person]:
    """Everyone of the conference by email, read back through a fresh session."""
    async with sessions() as fresh:
        statement = (
            select(Person)
            .where(Person.conference_id == conference.id)
            .options(selectinload(Person.choices).selectinload(ForumChoice.forum))
        )
        return {person.email: person for person in (await fresh.execute(statement)).scalars()}


def choice_keys(person: Person) -> list[str]:
    return [choice.forum.key for choice in sorted(person.choices, key=lambda c: c.rank)]


async def test_semicolon_csv_with_bom(tmp_path: Path) -> None:
    rows = table(
        GERMAN_HEADER,
        "anna@example.org|Anna|Schmitz|Erkelenz|Teilnehmerin|vor Ort|Englisch|sprache|werte|x",
        "|||||||||",
        "omer@example.org|Ömer|Çelik|Jobcenter; Kreis Heinsberg|Moderation|online||arbeit||nein",
    )
    path = write(tmp_path, "liste.csv", excel_csv(rows))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    read = read_table(path.name, path.read_bytes())
    assert [number for number, _ in read] == [2, 4]
    first, second = read[0][1], read[1][1]
    assert first["email"] == "anna@example.org"  # no BOM glued to the first header
    assert (first["attendance_mode"], second["first_name"]) == ("vor Ort", "Ömer")
    assert second["organisation"] == "Jobcenter; Kreis Heinsberg"
    good, errors = validate_rows(read, FORUMS)
    assert errors == []
    anna, omer = good[0][1], good[1][1]
    assert (anna.role, anna.attendance_mode, anna.language, anna.consent) == (
        Role.PARTICIPANT, AttendanceMode.IN_PERSON, Language.EN, True)  # fmt: skip
    assert (omer.role, omer.attendance_mode, omer.language, omer.consent) == (
        Role.MODERATOR, AttendanceMode.ONLINE, Language.DE, False)  # fmt: skip
    assert (anna.forum_choices, omer.forum_choices) == (["sprache", "werte"], ["arbeit"])


async def test_comma_csv_without_bom(tmp_path: Path) -> None:
    rows = table(HEADER, "noor@example.net|Noor|Haddad|Caritas, Region Heinsberg|werte|bildung")
    path = write(tmp_path, "list.csv", excel_csv(rows, delimiter=",", encoding="utf-8"))
    assert path.read_bytes().startswith(b"email,")
    [(number, row)] = read_table(path.name, path.read_bytes())
    assert (number, row) == (2, dict(zip(rows[0], rows[1], strict=True)))
    assert row["organisation"] == "Caritas, Region Heinsberg"


async def test_cp1252_file_from_german_excel(tmp_path: Path) -> None:
    rows = table(
        "E-Mail|Vorname|Nachname|Einrichtung",
        "juergen@example.org|Jürgen|Müller|Stadt Übach-Palenberg",
    )
    data = excel_csv(rows, encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    path = write(tmp_path, "teilnehmende.csv", data)
    [(number, row)] = read_table(path.name, path.read_bytes())
    assert number == 2
    assert (row["first_name"], row["last_name"], row["organisation"]) == (
        "Jürgen", "Müller", "Stadt Übach-Palenberg")  # fmt: skip


async def test_tab_delimited_utf16_text(tmp_path: Path) -> None:
    text = "Mail\tVorname\r\nolena@example.org\tОлена\r\n"
    path = write(tmp_path, "unicode.txt", text.encode("utf-16"))  # BOM, as Excel's Unicode-Text
    assert read_table(path.name, path.read_bytes()) == [
        (2, {"email": "olena@example.org", "first_name": "Олена"})
    ]


async def test_xlsx_with_german_headers(tmp_path: Path) -> None:
    sheet: list[list[object]] = [
        ["E-Mail ", "Vorname", "Name", "Institution", "Forum 1", "Forum 2", "Notiz"],
        ["Mehmet@Example.org", "Mehmet", "Öztürk", 4711, "Bildung", "arbeit", "ignoriert"],
        [],
        ["iryna@example.net", "Iryna", "Bondarenko", None, "werte", None, None],
    ]
    path = write(tmp_path, "Teilnehmende.xlsx", excel_xlsx(sheet))
    rows = read_table(path.name, path.read_bytes())
    assert [number for number, _ in rows] == [2, 4]
    assert rows[0][1] == {
        "email": "Mehmet@Example.org", "first_name": "Mehmet", "last_name": "Öztürk",
        "organisation": "4711", "forum_choice_1": "Bildung", "forum_choice_2": "arbeit",
    }  # fmt: skip
    good, errors = validate_rows(rows, FORUMS)
    assert errors == []
    assert good[0][1].email == "mehmet@example.org"
    assert [item.forum_choices for _, item in good] == [["bildung", "arbeit"], ["werte"]]


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("leer.csv", b"", "leer"),
        ("leer2.csv", b"\xef\xbb\xbf\r\n;;\r\n", "leer"),
        ("nur-kopf.csv", b"E-Mail;Vorname\r\n", "keine Datenzeilen"),
        ("ohne-mail.csv", b"Vorname;Nachname\r\nAnna;Schmitz\r\n", "E-Mail"),
        ("kaputt.xlsx", bytes(range(256)) * 4, "Excel"),
        ("ohne.xlsx", excel_xlsx([["Vorname"], ["Anna"]]), "keine Spalte für die E-Mail"),
        ("binär.csv", b"\x81\x8d\x8f\x90\x9d" * 10, "Zeichenkodierung"),
    ],
)
async def test_unreadable_files_are_refused(name: str, data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        read_table(name, data)
    assert name in raised.value.message
    assert fragment in raised.value.message


async def test_duplicate_email_and_overlong_organisation() -> None:
    rows = [
        (2, {"email": "anna@example.org", "organisation": "Stadt Wegberg"}),
        (3, {"email": "bjoern@example.org", "organisation": "x" * 201}),
        (4, {"email": " ANNA@example.org ", "organisation": "Stadt Wegberg"}),
    ]
    good, errors = validate_rows(rows, FORUMS)
    assert [number for number, _ in good] == [2]
    assert [(e.row, e.field) for e in errors] == [(3, "organisation"), (4, "email")]
    assert "201" in errors[0].reason and "200" in errors[0].reason
    assert "Zeile 2" in errors[1].reason and "doppelt" in errors[1].reason


async def test_bad_values_are_named() -> None:
    values = {"email": "a@example.org", "role": "Chefin", "language": "Französisch",
              "forum_choice_1": "werte", "forum_choice_2": "Werte"}  # fmt: skip
    good, errors = validate_rows([(2, values)], FORUMS)
    assert good == []
    assert {e.field for e in errors} == {"role", "language", "forum_choice_2"}
    assert all(e.row == 2 for e in errors)
    assert any("Chefin" in e.reason for e in errors)


@pytest.fixture
def three_bad_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Path:
    """A file of five rows, three of them bad; the import's log records captured."""
    caplog.set_level(logging.INFO, logger=importing.__name__)
    return write(tmp_path, "drei-fehler.csv", excel_csv(table(
        HEADER,
        "anna@example.org|Anna|Schmitz|Stadt Heinsberg|sprache|werte",
        "|Bob|Becker|privat|arbeit|",
        "kein-at-zeichen.example.org|Chidi|Abdullahi|VHS|bildung|",
        "dragan@example.net|Dragan|Petrović|DRK|sprache|kochen",
        "ebru@example.net|Ebru|Demir|AWO|bleibeperspektive|arbeit",
    )))  # fmt: skip


async def test_bad_rows_reject_the_whole_file(
    three_bad_rows: Path,
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    conference = await sample_conference(session)
    with pytest.raises(ImportRejectedError) as raised:
        await import_path(session, conference, three_bad_rows)
    await session.commit()
    details = raised.value.details
    assert details["applied"] is False
    assert (details["rows"], details["skipped"], details["created"]) == (5, 3, 0)
    errors = [RowError(**error) for error in details["errors"]]
    assert [(e.row, e.field) for e in errors] == [(3, "email"), (4, "email"), (5, "forum_choice_2")]
    assert "fehlt" in errors[0].reason
    assert "ungültig" in errors[1].reason
    assert "kochen" in errors[2].reason
    assert "Zeile 3" in raised.value.message
    assert "participants.import_rejected" in caplog.messages
    assert await stored_people(sessions, conference) == {}


async def test_skip_invalid_imports_the_good_rows(
    three_bad_rows: Path,
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    conference = await sample_conference(session)
    report = await import_path(session, conference, three_bad_rows, skip_invalid=True)
    await session.commit()
    assert (report.rows, report.created, report.updated, report.skipped) == (5, 2, 0, 3)
    assert report.applied and [e.row for e in report.errors] == [3, 4, 5]
    assert "participants.imported" in caplog.messages
    people = await stored_people(sessions, conference)
    assert sorted(people) == ["anna@example.org", "ebru@example.net"]
    assert choice_keys(people["ebru@example.net"]) == ["bleibeperspektive", "arbeit"]


async def test_duplicate_email_rejects_import(
    tmp_path: Path, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    conference = await sample_conference(session)
    rows = table("E-Mail|Vorname", "a@example.org|A", "b@example.org|B", "A@Example.org|A2")
    path = write(tmp_path, "doppelt.csv", excel_csv(rows))
    with pytest.raises(ImportRejectedError) as raised:
        await import_path(session, conference, path)
    [error] = raised.value.details["errors"]
    assert (error["row"], error["field"]) == (4, "email")
    assert "Zeile 2" in error["reason"]
    assert await stored_people(sessions, conference) == {}


async def test_reimport_updates_without_duplicates(
    tmp_path: Path, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    conference = await sample_conference(session)
    first = write(tmp_path, "v1.csv", excel_csv(table(
        "E-Mail|Vorname|Organisation|Sprache|Einwilligung|Forum 1|Forum 2",
        "anna@example.org|Anna|Stadt Erkelenz|en|ja|sprache|werte",
        "bjoern@example.org|Björn|Kreissportbund|de|nein|arbeit|bildung",
        "chidi@example.org|Chidi|VHS|de||werte|",
    )))  # fmt: skip
    report = await import_path(session, conference, first)
    await session.commit()
    assert (report.created, report.updated) == (3, 0)
    before = await stored_people(sessions, conference)

    second = write(tmp_path, "v2.csv", excel_csv(table(
        "E-Mail|Organisation|Forum 1|Forum 2",
        "ANNA@Example.org|Stadt Hückelhoven|werte|sprache",
        "bjoern@example.org|Kreissportbund||",
        "chidi@example.org|VHS|bildung|werte",
    )))  # fmt: skip
    report = await import_path(session, conference, second)
    await session.commit()
    assert (report.created, report.updated, report.skipped) == (0, 3, 0)
    after = await stored_people(sessions, conference)
    assert sorted(after) == sorted(before)
    anna = after["anna@example.org"]
    assert (anna.id, anna.token) == (before[anna.email].id, before[anna.email].token)
    assert anna.organisation == "Stadt Hückelhoven"
    # Columns v2 does not have stay as v1 set them.
    assert (anna.first_name, anna.language, anna.consent) == ("Anna", Language.EN, True)
    assert anna.consent_at is not None and after["chidi@example.org"].consent_at is None
    assert choice_keys(anna) == ["werte", "sprache"]
    assert choice_keys(after["bjoern@example.org"]) == []
    assert choice_keys(after["chidi@example.org"]) == ["bildung", "werte"]
    async with sessions() as fresh:
        total = await fresh.scalar(select(func.count()).select_from(Person))
        choices = await fresh.scalar(select(func.count()).select_from(ForumChoice))
    assert (total, choices) == (3, 4)


@pytest.mark.parametrize("name", ["namen.csv", "namen.xlsx"])
async def test_names_in_any_script_round_trip(
    name: str, tmp_path: Path, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    conference = await sample_conference(session)
    names = [("نور", "الحسن"), ("Олена", "Шевченко"), ("Siobhán", "O'Connor"),
             ("Marie-Luise", "Meier-Gräfe")]  # fmt: skip
    rows = [["E-Mail", "Vorname", "Nachname"]]
    rows += [[f"p{index}@example.org", first, last] for index, (first, last) in enumerate(names)]
    data = excel_xlsx(rows) if name.endswith(".xlsx") else excel_csv(rows)
    await import_path(session, conference, write(tmp_path, name, data))
    await session.commit()
    people = await stored_people(sessions, conference)
    stored = [(people[f"p{i}@example.org"].first_name, people[f"p{i}@example.org"].last_name)
              for i in range(len(names))]  # fmt: skip
    assert stored == names


async def test_line_break_in_name_is_rejected(
    tmp_path: Path, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    conference = await sample_conference(session)
    rows = table("E-Mail|Vorname|Nachname", "ok@example.org|Anna|Lenz",
                 "evil@example.org|Eve\r\nBcc: all@example.org|Nowak")  # fmt: skip
    data = excel_csv(rows)
    assert b'"Eve\r\nBcc: all@example.org"' in data
    path = write(tmp_path, "umbruch.csv", data)
    report = await import_path(session, conference, path, skip_invalid=True)
    await session.commit()
    assert [(e.row, e.field) for e in report.errors] == [(3, "first_name")]
    assert "Zeilenumbr" in report.errors[0].reason
    people = await stored_people(sessions, conference)
    assert sorted(people) == ["ok@example.org"]
    assert all("\n" not in p.first_name and "\r" not in p.first_name for p in people.values())


async def test_generated_list_of_300(
    tmp_path: Path,
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = SHARED_DATA / "make_participants.py"
    if not script.exists():
        pytest.skip(f"{script} not found")
    out = tmp_path / "participants.csv"
    command = [sys.executable, str(script), "--n", "300", "--seed", "7", "--out", str(out)]
    subprocess.run(command, check=True, timeout=60)
    with out.open(encoding="utf-8", newline="") as handle:
        expected = {row["email"]: row for row in csv.DictReader(handle)}
    conference = await sample_conference(session)
    report = await import_path(session, conference, out)
    await session.commit()
    assert (report.rows, report.created, report.skipped, report.errors) == (300, 300, 0, [])
    people = await stored_people(sessions, conference)
    assert len(people) == len(expected) == 300
    for email, row in expected.items():
        person = people[email]
        assert (person.first_name, person.last_name, person.organisation) == (
            row["first_name"], row["last_name"], row["organisation"])  # fmt: skip
        assert (person.role.value, person.language.value) == (row["role"], row["language"])
        assert choice_keys(person) == [row["forum_choice_1"], row["forum_choice_2"]]

    monkeypatch.setattr(importing, "_IN_CHUNK", 70)  # the lookup must work across chunks
    report = await import_path(session, conference, out)
    await session.commit()
    assert (report.created, report.updated) == (0, 300)
    assert len(await stored_people(sessions, conference)) == 300
