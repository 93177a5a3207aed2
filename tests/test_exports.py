"""Attendance exports opened the way organisers open them: csv module, openpyxl, the CLI."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance import exports
from orchestrator.attendance.models import AttendanceStatus
from orchestrator.attendance.reconcile import Record, Source
from orchestrator.attendance.table import Row
from orchestrator.conferences.models import SessionKind
from orchestrator.participants.models import AttendanceMode
from tests.test_attendance import add_person, add_stay, at, sample, staff_api

__all__ = ["staff_api"]  # the fixture, shared with test_attendance

ORCHESTRATOR = str(Path(sys.executable).with_name("orchestrator"))
TRICKY = ['=HYPERLINK("http://evil")', "+49 151 1234", "-Anna", "@SUMME(A1)", "\tTab", "\rCR"]


def row(
    name: str,
    status: AttendanceStatus = AttendanceStatus.PRESENT,
    *,
    forum: str | None = "sprache",
    kind: SessionKind = SessionKind.BREAKOUT_ROUND,
    minutes: int = 80,
    expected: bool = True,
    organisation: str = "Caritas Heinsberg",
) -> Row:
    record = Record(
        status=status,
        computed_status=status,
        covered=timedelta(minutes=minutes, seconds=30),
        first_join=at(11, 2) if minutes else None,
        last_leave=at(12, 25) if minutes else None,
        source=Source.VIDEO if minutes else Source.NONE,
        reason="krank gemeldet" if status is AttendanceStatus.EXCUSED else None,
    )
    return Row(
        person_id=uuid.uuid4(),
        name=name,
        organisation=organisation,
        mode=AttendanceMode.ONLINE,
        session_key="forums" if kind is SessionKind.BREAKOUT_ROUND else "opening",
        session_title="Foren" if kind is SessionKind.BREAKOUT_ROUND else "Begrüßung",
        session_kind=kind,
        forum_key=forum,
        forum_title={"sprache": "Sprache – Schlüssel", "werte": "Werte"}.get(forum or ""),
        expected=expected,
        record=record,
    )


ROWS = [
    row("Jürgen Größe-Übel"),
    *(row(name, AttendanceStatus.PARTIAL, minutes=20) for name in TRICKY),
    row("Ömer Çelik", AttendanceStatus.EXCUSED, forum="werte", minutes=0),
    row("Zoë Walk-in", AttendanceStatus.PARTIAL, forum="werte", minutes=40, expected=False),
    row("Nora Plenum", kind=SessionKind.PLENARY),  # plenary rows stay out of the summary
    row("Ohne Forum", AttendanceStatus.ABSENT, forum=None, minutes=0),
]


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM German Excel needs for UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_csv_for_german_excel_is_neutralised_and_keeps_umlauts() -> None:
    lines = read_csv(exports.to_csv(ROWS))
    assert lines[0] == list(exports.HEADERS)
    assert lines[0][:3] == ["Name", "Organisation", "Forum"]
    first = dict(zip(lines[0], lines[1], strict=True))
    assert first["Name"] == "Jürgen Größe-Übel"
    assert first["Forum"] == "Sprache – Schlüssel"
    assert (first["Erster Beitritt"], first["Letztes Verlassen"]) == (
        "18.03.2027 11:02",
        "18.03.2027 12:25",
    )
    assert (first["Minuten"], first["Status"], first["Teilnahmeform"]) == (
        "80",
        "anwesend",
        "online",
    )
    names = [line[0] for line in lines[2 : 2 + len(TRICKY)]]
    assert names == ["'" + name for name in TRICKY]
    excused = dict(zip(lines[0], lines[1 + 1 + len(TRICKY)], strict=True))
    assert (excused["Status"], excused["Begründung"]) == ("entschuldigt", "krank gemeldet")


def test_neutralise_leaves_ordinary_text_alone() -> None:
    assert exports.neutralise("Anna-Lena") == "Anna-Lena"
    assert exports.neutralise("＝1+1") == "'＝1+1"
    assert exports.neutralise("") == ""


def test_summary_counts_per_forum_of_the_round() -> None:
    summary = {forum.key: forum for forum in exports.summary(ROWS)}
    assert set(summary) == {"sprache", "werte", ""}
    sprache = summary["sprache"]
    partial = len(TRICKY)
    assert (sprache.expected, sprache.present, sprache.partial) == (1 + partial, 1, partial)
    assert sprache.minutes == 80 + 20 * partial
    werte = summary["werte"]
    assert (werte.expected, werte.excused, werte.partial, werte.minutes) == (1, 1, 1, 40)
    assert summary[""].title == "(ohne Forum)" and summary[""].absent == 1
    assert [forum.key for forum in exports.summary(ROWS)][-1] == ""


def sheet_rows(sheet: Worksheet) -> list[list[object]]:
    return [[cell.value for cell in line] for line in sheet.iter_rows()]


def test_xlsx_opens_with_two_sheets_and_no_formulas() -> None:
    body = exports.to_xlsx(ROWS, exports.summary(ROWS))
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["Anwesenheit", "Foren"]
    people = book["Anwesenheit"]
    lines = sheet_rows(people)
    assert lines[0] == list(exports.HEADERS)
    assert lines[1][0] == "Jürgen Größe-Übel"
    assert lines[1][6] == datetime(2027, 3, 18, 11, 2)  # local wall-clock time
    assert lines[1][8] == 80
    for number, name in enumerate(TRICKY, start=3):
        cell = people.cell(row=number, column=1)
        # XML reads a CR back as LF; the leading ' is what matters.
        assert (cell.value, cell.data_type) == ("'" + name.replace("\r", "\n"), "s")
    assert all(cell.data_type != "f" for line in people.iter_rows() for cell in line)
    summary = sheet_rows(book["Foren"])
    assert summary[0] == list(exports.SUMMARY_HEADERS)
    assert summary[1] == ["Sprache – Schlüssel", 7, 1, 6, 0, 0, 200]
    assert summary[2] == ["Werte", 1, 0, 1, 0, 1, 40]
    assert summary[3] == ["(ohne Forum)", 1, 0, 0, 1, 0, 0]


async def conference_with_attendance(session: AsyncSession) -> str:
    """The sample conference with a formula-like name and an umlaut, committed."""
    conference = await sample(session)
    evil = await add_person(
        session, conference, "=cmd|'/c calc'!A1", "Böse", forum="sprache", organisation="@Org"
    )
    good = await add_person(session, conference, "Jörg", "Größe", forum="werte")
    add_stay(session, conference, evil, "sprache", at(11), at(12, 30))
    add_stay(session, conference, good, "werte", at(11), at(11, 30))
    await session.commit()
    return conference.slug


@pytest.mark.asyncio
async def test_api_downloads(session: AsyncSession, staff_api: httpx.AsyncClient) -> None:
    slug = await conference_with_attendance(session)
    base = f"/api/v1/conferences/{slug}/attendance"
    answer = await staff_api.get(f"{base}/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="{slug}-anwesenheit.csv"'
    )
    names = [line[0] for line in read_csv(answer.content)[1:]]
    assert "'=cmd|'/c calc'!A1 Böse" in names and "Jörg Größe" in names
    workbook = await staff_api.get(f"{base}/export.xlsx")
    assert workbook.headers["content-disposition"].endswith('-anwesenheit.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    lines = sheet_rows(book["Anwesenheit"])
    evil = next(line for line in lines if str(line[0]).startswith("'="))
    assert evil[1] == "'@Org"
    forums = {line[0]: line for line in sheet_rows(book["Foren"])[1:]}
    assert forums["Sprache – Schlüssel zum Miteinander"][1:4] == [1, 1, 0]
    assert forums["Wertevermittlung und Zusammenleben"][1:4] == [1, 0, 1]
    assert (
        await staff_api.get("/api/v1/conferences/nope/attendance/export.csv")
    ).status_code == 404


def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    data = tmp_path / "data"
    env.update(
        ORCH_DATA_DIR=str(data),
        ORCH_ENV_FILE=str(data / "none.env"),
        ORCH_DATABASE_URL=database_url,
    )
    return env


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ORCHESTRATOR, *args], env=env, cwd=cwd, capture_output=True, timeout=120, check=False
    )


@pytest.mark.asyncio
async def test_cli_export(session: AsyncSession, database_url: str, tmp_path: Path) -> None:
    slug = await conference_with_attendance(session)
    env = cli_env(tmp_path, database_url)
    exported = cli(env, tmp_path, "attendance", "export", slug, "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    lines = read_csv(exported.stdout)
    assert lines[0][0] == "Name" and len(lines) == 1 + 2 * 3  # two people, three sessions
    assert "Jörg Größe" in [line[0] for line in lines]
    assert all(not line[0].startswith("=") for line in lines)
    target = tmp_path / "liste.xlsx"
    written = cli(
        env, tmp_path, "attendance", "export", slug, "--format", "xlsx", "--output", str(target)
    )
    assert written.returncode == 0, written.stderr
    assert openpyxl.load_workbook(target).sheetnames == ["Anwesenheit", "Foren"]
    default = cli(env, tmp_path, "attendance", "export", slug, "--format", "xlsx")
    assert default.returncode == 0, default.stderr
    assert (tmp_path / f"{slug}-anwesenheit.xlsx").is_file()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.asyncio
async def test_cli_export_errors_are_one_line(
    session: AsyncSession, database_url: str, tmp_path: Path
) -> None:
    slug = await conference_with_attendance(session)
    env = cli_env(tmp_path, database_url)
    for args in (("nope", "--format", "csv"), (slug, "--format", "pdf")):
        result = cli(env, tmp_path, "attendance", "export", *args)
        assert result.returncode == 1
        message = result.stderr.decode()
        assert message.startswith("Fehler: ") and message.count("\n") == 1, message
