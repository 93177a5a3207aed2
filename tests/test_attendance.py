"""The reconciled attendance record: rules to the second, the table, overrides and the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orchestrator.attendance.models import AttendanceStatus, CheckIn, PresenceInterval
from orchestrator.attendance.overrides import Decision, audit_trail, override
from orchestrator.attendance.reconcile import Record, Rules, Source, Stay, Visit, Window, reconcile
from orchestrator.attendance.table import Row, attendance_table
from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import forum_by_key, get_by_slug, session_by_key
from orchestrator.config import Settings
from orchestrator.errors import InvalidInputError, NotFoundError
from orchestrator.participants.models import Assignment, AttendanceMode, Person, Role
from orchestrator.rooms.models import Room
from orchestrator.web import app as web_app
from orchestrator.web.api import attendance as attendance_api
from orchestrator.web.deps import require_staff
from tests.conftest import API_KEY, load_sample
from tests.live import serve

BERLIN = ZoneInfo("Europe/Berlin")
DAY = (2027, 3, 18)
ROUND = Window(
    datetime(*DAY, 11, 0, tzinfo=BERLIN),
    datetime(*DAY, 12, 30, tzinfo=BERLIN),
    datetime(*DAY, 18, 0, tzinfo=BERLIN),
)
RULES = Rules(0.75)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time on the sample conference's day."""
    return datetime(*DAY, hour, minute, second, tzinfo=BERLIN)


def rule(stays: list[Stay], visit: Visit | None = None, *decisions: Decision) -> Record:
    return reconcile(ROUND, stays, visit, list(decisions), RULES)


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (at(12, 7), AttendanceStatus.PARTIAL),  # 67 min of 90
        (at(12, 7, 29), AttendanceStatus.PARTIAL),  # one second short of 67.5 min
        (at(12, 7, 30), AttendanceStatus.PRESENT),  # exactly 75 %
        (at(12, 8), AttendanceStatus.PRESENT),  # 68 min
    ],
)
def test_present_from_75_percent_to_the_second(end: datetime, status: AttendanceStatus) -> None:
    assert rule([(at(11), end)]).status is status


def test_nothing_is_absent_and_a_minute_is_partial() -> None:
    assert rule([]).status is AttendanceStatus.ABSENT
    assert rule([]).source is Source.NONE
    assert rule([(at(11), at(11, 1))]).status is AttendanceStatus.PARTIAL


def test_overlaps_and_reloads_count_once_and_time_is_clipped_to_the_session() -> None:
    record = rule(
        [
            (at(10, 50), at(11, 40)),  # before the start: counts from 11:00
            (at(11, 30), at(12, 0)),  # a second room, overlapping 10 minutes
            (at(11, 59), at(12, 5)),  # a reload
            (at(12, 20), at(13, 0)),  # after the end: counts until 12:30
            (at(9, 0), at(9, 30)),  # outside the session: ignored
        ]
    )
    assert record.covered == timedelta(minutes=75)
    assert record.status is AttendanceStatus.PRESENT
    assert (record.first_join, record.last_leave) == (at(10, 50), at(13, 0))
    assert record.source is Source.VIDEO


def test_open_stay_counts_until_now_or_the_end() -> None:
    early = Window(ROUND.starts_at, ROUND.ends_at, at(11, 30))
    record = reconcile(early, [(at(11), None)], None, [], RULES)
    assert (record.minutes, record.status, record.last_leave) == (
        30,
        AttendanceStatus.PARTIAL,
        None,
    )
    assert rule([(at(11), None)]).minutes == 90


def test_check_in_is_present_unless_checked_out_early() -> None:
    assert rule([], Visit(at(10, 55), None)).status is AttendanceStatus.PRESENT
    assert rule([], Visit(at(10, 55), None)).source is Source.IN_PERSON
    assert rule([], Visit(at(11, 10), at(12, 8))).status is AttendanceStatus.PRESENT
    early = rule([], Visit(at(11), at(11, 30)))
    assert (early.status, early.minutes) == (AttendanceStatus.PARTIAL, 30)
    both = rule([(at(11, 20), at(12, 30))], Visit(at(11), at(11, 30)))
    assert (both.status, both.minutes, both.source) == (AttendanceStatus.PRESENT, 90, Source.BOTH)


def test_the_latest_override_wins() -> None:
    first = Decision(AttendanceStatus.PRESENT, "Liste", at(15))
    later = Decision(AttendanceStatus.EXCUSED, "krank", at(16))
    record = rule([(at(11), at(11, 10))], None, first, later)
    assert (record.status, record.computed_status) == (
        AttendanceStatus.EXCUSED,
        AttendanceStatus.PARTIAL,
    )
    assert record.reason == "krank"


# --- the table from the database ----------------------------------------------------


async def add_person(
    session: AsyncSession,
    conference: Conference,
    first: str,
    last: str = "Muster",
    *,
    forum: str | None = None,
    organisation: str = "",
    mode: AttendanceMode = AttendanceMode.ONLINE,
    role: Role = Role.PARTICIPANT,
) -> Person:
    """A person of the conference, in `forum` of the breakout round when given."""
    person = Person(
        conference_id=conference.id,
        email=f"{uuid.uuid4().hex[:12]}@example.org",
        first_name=first,
        last_name=last,
        organisation=organisation,
        attendance_mode=mode,
        role=role,
    )
    session.add(person)
    if forum is not None:
        chosen = forum_by_key(conference, forum)
        assert chosen.session_id is not None
        session.add(
            Assignment(person_id=person.id, session_id=chosen.session_id, forum_id=chosen.id)
        )
    await session.flush()
    return person


def room_of(conference: Conference, key: str) -> Room:
    """The room of a forum (by forum key) or of a plenary (by session key)."""
    for room in conference.rooms:
        if (room.forum and room.forum.key == key) or (
            room.forum is None and room.session and room.session.key == key
        ):
            return room
    raise LookupError(key)


def add_stay(
    session: AsyncSession,
    conference: Conference,
    person: Person | None,
    room_key: str,
    joined_at: datetime,
    left_at: datetime | None,
) -> None:
    room = room_of(conference, room_key)
    key = str(person.id) if person else f"jid:{uuid.uuid4().hex}"
    session.add(
        PresenceInterval(
            conference_id=conference.id,
            room_id=room.id,
            room_name=room.name,
            person_id=person.id if person else None,
            occupant_key=key,
            display_name=person.display_name if person else "Gast",
            joined_at=joined_at,
            left_at=left_at,
        )
    )


def rows_of(rows: list[Row], session_key: str) -> dict[str, Row]:
    return {row.name: row for row in rows if row.session_key == session_key}


async def sample(session: AsyncSession) -> Conference:
    conference = await load_sample(session)
    return await get_by_slug(session, conference.slug)


@pytest.mark.asyncio
async def test_round_rules_to_the_second_in_the_table(session: AsyncSession) -> None:
    conference = await sample(session)
    short = await add_person(session, conference, "Kurz", forum="sprache")
    enough = await add_person(session, conference, "Genug", forum="sprache")
    add_stay(session, conference, short, "sprache", at(11), at(12, 7))
    add_stay(session, conference, enough, "sprache", at(11), at(12, 8))
    await session.commit()
    rows = rows_of(await attendance_table(session, conference, at(18)), "forums")
    assert (rows["Kurz Muster"].record.status, rows["Kurz Muster"].record.minutes) == (
        AttendanceStatus.PARTIAL,
        67,
    )
    assert rows["Genug Muster"].record.status is AttendanceStatus.PRESENT
    assert rows["Genug Muster"].forum_key == "sprache"
    assert rows["Genug Muster"].record.first_join == at(11)
    assert rows["Genug Muster"].record.first_join.utcoffset() == timedelta(hours=1)


@pytest.mark.asyncio
async def test_two_rooms_overlapping_are_not_double_counted(session: AsyncSession) -> None:
    conference = await sample(session)
    mover = await add_person(session, conference, "Wechsel", forum="sprache")
    add_stay(session, conference, mover, "sprache", at(11), at(11, 40))
    add_stay(session, conference, mover, "werte", at(11, 30), at(12))
    add_stay(session, conference, mover, "opening", at(11, 45), at(11, 50))  # another session
    await session.commit()
    row = rows_of(await attendance_table(session, conference, at(18)), "forums")["Wechsel Muster"]
    assert (row.record.minutes, row.record.status) == (60, AttendanceStatus.PARTIAL)


@pytest.mark.asyncio
async def test_open_interval_counts_until_now(session: AsyncSession) -> None:
    conference = await sample(session)
    person = await add_person(session, conference, "Offen", forum="werte")
    add_stay(session, conference, person, "werte", at(11), None)
    await session.commit()
    during = rows_of(await attendance_table(session, conference, at(11, 30)), "forums")
    assert during["Offen Muster"].record.minutes == 30
    assert during["Offen Muster"].record.status is AttendanceStatus.PARTIAL
    after = rows_of(await attendance_table(session, conference, at(18)), "forums")
    assert after["Offen Muster"].record.minutes == 90
    assert after["Offen Muster"].record.last_leave is None


@pytest.mark.asyncio
async def test_check_ins_present_or_partial(session: AsyncSession) -> None:
    conference = await sample(session)
    stays = await add_person(session, conference, "Bleibt", mode=AttendanceMode.IN_PERSON)
    leaves = await add_person(session, conference, "Geht", mode=AttendanceMode.IN_PERSON)
    opening = session_by_key(conference, "opening")
    session.add(CheckIn(person_id=stays.id, session_id=opening.id, arrived_at=at(9, 20)))
    session.add(
        CheckIn(person_id=leaves.id, session_id=opening.id, arrived_at=at(9, 30), left_at=at(10))
    )
    await session.commit()
    rows = rows_of(await attendance_table(session, conference, at(18)), "opening")
    assert rows["Bleibt Muster"].record.status is AttendanceStatus.PRESENT
    assert rows["Bleibt Muster"].record.source is Source.IN_PERSON
    assert (rows["Geht Muster"].record.status, rows["Geht Muster"].record.minutes) == (
        AttendanceStatus.PARTIAL,
        30,
    )


@pytest.mark.asyncio
async def test_who_gets_a_row(session: AsyncSession) -> None:
    conference = await sample(session)
    assigned = await add_person(session, conference, "Zugeteilt", forum="arbeit")
    walk_in = await add_person(session, conference, "Spontan")
    await add_person(session, conference, "Raum", role=Role.ROOM_SYSTEM)
    add_stay(session, conference, walk_in, "bildung", at(11, 10), at(12, 30))
    add_stay(session, conference, None, "bildung", at(11), at(12, 30))  # anonymous: no row
    await session.commit()
    rows = await attendance_table(session, conference, at(18))
    assert {row.session_key for row in rows} == {"opening", "forums", "results"}
    assert set(rows_of(rows, "opening")) == {"Zugeteilt Muster", "Spontan Muster"}
    forums = rows_of(rows, "forums")
    assert set(forums) == {"Zugeteilt Muster", "Spontan Muster"}
    assert forums["Zugeteilt Muster"].record.status is AttendanceStatus.ABSENT
    assert forums["Zugeteilt Muster"].expected
    assert not forums["Spontan Muster"].expected
    assert forums["Spontan Muster"].forum_key == "bildung"  # where they spent the round
    assert rows_of(rows, "results")["Zugeteilt Muster"].forum_key == "arbeit"
    assert all(row.person_id in {assigned.id, walk_in.id} for row in rows)


@pytest.mark.asyncio
async def test_the_table_costs_the_same_few_queries_at_any_size(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    conference = await sample(session)
    for number in range(30):
        person = await add_person(session, conference, f"P{number}", forum="werte")
        add_stay(session, conference, person, "werte", at(11), at(12))
        add_stay(session, conference, person, "opening", at(9, 30), None)
    await session.commit()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        rows = await attendance_table(session, conference, at(18))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(rows) == 90
    assert len(statements) <= 5, statements


@pytest.mark.asyncio
async def test_override_excused_wins_and_the_audit_keeps_both(session: AsyncSession) -> None:
    conference = await sample(session)
    person = await add_person(session, conference, "Krank", forum="werte")
    add_stay(session, conference, person, "werte", at(11), at(11, 5))
    round_id = session_by_key(conference, "forums").id
    await override(session, person.id, round_id, "present", "laut Liste", "Anna Orga")
    await override(session, person.id, round_id, AttendanceStatus.EXCUSED, "krank gemeldet", "Bea")
    await session.commit()
    row = rows_of(await attendance_table(session, conference, at(18)), "forums")["Krank Muster"]
    assert (row.record.status, row.record.computed_status, row.record.reason) == (
        AttendanceStatus.EXCUSED,
        AttendanceStatus.PARTIAL,
        "krank gemeldet",
    )
    trail = await audit_trail(session, conference)
    assert [(entry.status, entry.reason, entry.created_by) for entry in trail] == [
        (AttendanceStatus.PRESENT, "laut Liste", "Anna Orga"),
        (AttendanceStatus.EXCUSED, "krank gemeldet", "Bea"),
    ]
    assert trail[0].person_name == "Krank Muster" and trail[0].session_key == "forums"


@pytest.mark.asyncio
async def test_override_needs_a_one_line_reason_and_a_known_target(session: AsyncSession) -> None:
    conference = await sample(session)
    person = await add_person(session, conference, "Jemand")
    opening = session_by_key(conference, "opening").id
    for reason in ("", "   ", "zwei\nZeilen"):
        with pytest.raises(InvalidInputError, match="reason"):
            await override(session, person.id, opening, "excused", reason, "")
    with pytest.raises(InvalidInputError, match="status"):
        await override(session, person.id, opening, "vielleicht", "Grund", "")
    with pytest.raises(NotFoundError):
        await override(session, uuid.uuid4(), opening, "excused", "Grund", "")
    with pytest.raises(NotFoundError):
        await override(session, person.id, 999_999, "excused", "Grund", "")


def app_with_attendance(settings: Settings) -> FastAPI:
    """The app at 18:00 on the day; the attendance router added here until app.py has it."""
    app = web_app.create_app(settings, clock=FrozenClock(at(18)))
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/api/v1/conferences/{slug}/attendance/export.csv" not in paths:
        api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_staff)])
        api.include_router(attendance_api.router)
        app.include_router(api)
    return app


@pytest_asyncio.fixture
async def staff_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Like the `api` fixture, on an app that serves the attendance routes."""
    async with (
        serve(app_with_attendance(settings)) as base_url,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        ) as client,
    ):
        yield client


@pytest.mark.asyncio
async def test_api_lists_rows_and_records_overrides(
    session: AsyncSession, staff_api: httpx.AsyncClient
) -> None:
    api = staff_api
    conference = await sample(session)
    person = await add_person(session, conference, "Über", "Prüfung", forum="sprache")
    add_stay(session, conference, person, "sprache", at(11), at(12, 30))
    await session.commit()
    base = f"/api/v1/conferences/{conference.slug}/attendance"
    listing = (await api.get(base, params={"session": "forums"})).json()
    assert [row["name"] for row in listing["rows"]] == ["Über Prüfung"]
    assert listing["rows"][0]["status"] == "present" and listing["rows"][0]["minutes"] == 90
    assert listing["summary"][0]["forum"] == "sprache" and listing["summary"][0]["present"] == 1
    body = {"person_id": str(person.id), "session": "results", "status": "excused"}
    created = await api.post(f"{base}/overrides", json={**body, "reason": "Zugausfall"})
    assert created.status_code == 201, created.text
    assert created.json()["session"] == "results"
    refused = await api.post(f"{base}/overrides", json={**body, "reason": ""})
    assert refused.status_code == 422
    unknown = await api.post(f"{base}/overrides", json={**body, "session": "x", "reason": "r"})
    assert unknown.status_code == 404
    trail = (await api.get(f"{base}/overrides")).json()
    assert [(e["person_name"], e["reason"]) for e in trail] == [("Über Prüfung", "Zugausfall")]
    results = (await api.get(base, params={"session": "results"})).json()["rows"]
    assert results[0]["status"] == "excused" and results[0]["computed_status"] == "absent"
