"""Issue 10 B: every figure includes every event accepted before it was asked for.

A burst of event_sync events is posted over real HTTP to the app under uvicorn; right after
the last 200 the attendance list, its CSV/XLSX exports (API) and the CLI export must show all
of them, on SQLite and PostgreSQL, whether or not the background folder has run meanwhile.
Events posted right before a graceful shutdown are folded on the way down.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.current import current_table
from orchestrator.attendance.folding import fold_pending
from orchestrator.attendance.models import JitsiEvent, PresenceInterval
from orchestrator.clock import FrozenClock
from orchestrator.conferences.repository import get_by_slug, session_by_key
from orchestrator.config import Settings
from orchestrator.rooms.templates import load_templates
from orchestrator.web.app import create_app
from tests.conftest import API_KEY
from tests.event_sync import DAY, EventSync, Payload, Room, epoch, eventually, new_jid, user
from tests.live import serve
from tests.smtp_server import Sessions
from tests.test_attendance import add_person, room_of, sample
from tests.test_exports import cli, cli_env, read_csv

PEOPLE = 24
WAVES = 4


@dataclass
class Burst:
    slug: str
    names: list[str]
    waves: list[list[Payload]]  # each wave: the events of PEOPLE // WAVES people
    minutes: int  # what each person's row must show

    @property
    def events(self) -> list[Payload]:
        return [event for wave in self.waves for event in wave]


async def burst(session: AsyncSession) -> Burst:
    """PEOPLE people in the forum "sprache", each in its room from +10 s to -10 min."""
    conference = await sample(session)
    people = [
        await add_person(session, conference, f"P{n:02d}", "Schnell", forum="sprache")
        for n in range(PEOPLE)
    ]
    await session.commit()
    item = session_by_key(conference, "forums")
    room = Room(room_of(conference, "sprache").name, epoch(item.starts_at))
    joined, left = epoch(item.starts_at) + 10, epoch(item.ends_at) - 600
    events: list[list[Payload]] = [[room.created()]]
    for person in people:
        jid = new_jid()
        context = user(str(person.id), person.display_name)
        events.append([room.join(jid, joined, context), room.leave(jid, left)])
    size = PEOPLE // WAVES
    waves = [
        [event for pair in events[1 + n * size : 1 + (n + 1) * size] for event in pair]
        for n in range(WAVES)
    ]
    waves[0] = events[0] + waves[0]
    names = [f"{person.first_name} {person.last_name}" for person in people]
    return Burst(conference.slug, names, waves, (left - joined) // 60)


@asynccontextmanager
async def app(settings: Settings, fold_seconds: float | None) -> AsyncIterator[tuple[str, str]]:
    """The app at 18:00 on the day, with or without the background folder: (url, secret)."""
    changes = {"attendance_fold_seconds": fold_seconds, "attendance_census_seconds": None}
    clock = FrozenClock(DAY.replace(hour=18))
    async with serve(create_app(settings.model_copy(update=changes), clock=clock)) as url:
        yield url, str(settings.jitsi_webhook_secret)


async def post(url: str, secret: str, events: list[Payload]) -> None:
    async with EventSync(f"{url}/jitsi", secret) as sync:
        deliveries = await sync.send_all(events, concurrency=8)
    assert [d.status for d in deliveries] == [200] * len(events)


def staff(url: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=60)


async def minutes_by_name(client: httpx.AsyncClient, slug: str) -> dict[str, int]:
    answer = await client.get(
        f"/api/v1/conferences/{slug}/attendance", params={"session": "forums"}
    )
    assert answer.status_code == 200, answer.text
    return {row["name"]: row["minutes"] for row in answer.json()["rows"]}


async def stored(sessions: Sessions) -> tuple[int, int]:
    """(events not folded, intervals)."""
    async with sessions() as session:
        pending = select(func.count()).where(JitsiEvent.processed.is_(False))
        intervals = select(func.count()).select_from(PresenceInterval)
        return int(await session.scalar(pending) or 0), int(await session.scalar(intervals) or 0)


@pytest.mark.asyncio
async def test_exports_right_after_a_burst_hold_every_event(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    """No background folder at all: only folding before reading can make these figures."""
    day = await burst(session)
    async with app(settings, None) as (url, secret), staff(url) as client:
        await post(url, secret, day.events)
        assert await minutes_by_name(client, day.slug) == dict.fromkeys(day.names, day.minutes)
        base = f"/api/v1/conferences/{day.slug}/attendance"
        lines = read_csv((await client.get(f"{base}/export.csv")).content)
        video = {line[0] for line in lines[1:] if line[3] == "Foren" and line[5] == "Video"}
        assert video == set(day.names)
        book = openpyxl.load_workbook(io.BytesIO((await client.get(f"{base}/export.xlsx")).content))
        forums = [line for line in book["Foren"].iter_rows(values_only=True)][1:]
        assert [(line[1], line[2]) for line in forums] == [(PEOPLE, PEOPLE)]  # expected, present
    assert await stored(sessions) == (0, PEOPLE)


@pytest.mark.asyncio
async def test_reads_between_waves_race_the_background_folder_and_miss_nothing(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    """The folder folds a moment after writes; readers fold too. Every read after a wave
    shows it, and no interval is written twice (the claim and the lock hold)."""
    day = await burst(session)
    size = PEOPLE // WAVES
    async with app(settings, 0.01) as (url, secret), staff(url) as client:
        for number, wave in enumerate(day.waves, start=1):
            await post(url, secret, wave)
            reads = await asyncio.gather(*(minutes_by_name(client, day.slug) for _ in range(3)))
            for seen in reads:
                done = {name: day.minutes for name in day.names[: number * size]}
                assert {name: seen[name] for name in done} == done
    assert await stored(sessions) == (0, PEOPLE)


@pytest.mark.asyncio
async def test_cli_export_right_after_a_burst_holds_every_event(
    session: AsyncSession, sessions: Sessions, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    day = await burst(session)
    async with app(settings, None) as (url, secret):
        await post(url, secret, day.events)
        assert (await stored(sessions))[0] > 0  # the server has folded nothing
        exported = await asyncio.to_thread(
            cli, cli_env(tmp_path, database_url), tmp_path, "attendance", "export", day.slug,
            "--format", "csv",
        )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    lines = read_csv(exported.stdout)
    video = {line[0] for line in lines[1:] if line[3] == "Foren" and line[5] == "Video"}
    assert video == set(day.names)


@pytest.mark.asyncio
async def test_events_posted_right_before_a_graceful_shutdown_are_folded_by_it(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    day = await burst(session)
    async with app(settings, None) as (url, secret):
        await post(url, secret, day.events)
        assert await stored(sessions) == (len(day.events), 0)
    assert await stored(sessions) == (0, PEOPLE)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.asyncio
async def test_a_read_waits_for_a_fold_under_way_instead_of_skipping_it(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    """A fold that has claimed every event but not committed: the reader's own fold finds
    nothing to claim, so it must wait for that fold's intervals rather than read without."""
    day = await burst(session)
    async with app(settings, None) as (url, secret):
        await post(url, secret, day.events)
    async with sessions() as session:  # the shutdown folded them: make them pending again
        await session.execute(delete(PresenceInterval))
        await session.execute(update(JitsiEvent).values(processed=False))
        await session.commit()
    templates = load_templates(settings.room_templates_dir)
    clock = FrozenClock(DAY.replace(hour=18))
    async with sessions() as background, sessions() as reader:
        assert await fold_pending(background, clock(), templates=templates) > 0  # not committed
        conference = await get_by_slug(reader, day.slug)
        reading = asyncio.create_task(current_table(reader, sessions, conference, clock, templates))
        await eventually(lambda: waiting_for_the_fold_lock(sessions), bool, 30)
        await background.commit()
        rows = await reading
    forums = {row.name: row.record.minutes for row in rows if row.session_key == "forums"}
    assert forums == dict.fromkeys(day.names, day.minutes)
    assert await stored(sessions) == (0, PEOPLE)


async def waiting_for_the_fold_lock(sessions: Sessions) -> bool:
    async with sessions() as session:
        probe = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return bool(await session.scalar(probe))
