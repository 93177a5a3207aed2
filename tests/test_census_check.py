"""The census cross-check speaks only when a person should look (issue 10: quiet both).

Events arrive over real HTTP (event_sync's format) at the app under uvicorn with its folder
and census loop off; each test then runs checks one by one against a FakeProsody census,
or against a port where nothing answers, and reads what was logged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.presence import Mismatch
from orchestrator.cli.operations import demo_settings
from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.jitsi.client import ProsodyClient
from orchestrator.web.app import create_app
from orchestrator.web.jitsi.census import CensusWatch, check_once
from tests.conftest import load_sample
from tests.event_sync import DAY, EventSync, Room, at, intervals, new_jid, user
from tests.fake_prosody import FakeProsody
from tests.live import serve

ANNA = {"jid": "anna@meet.jitsi/1", "email": "", "display_name": "Anna"}
BODO = {"jid": "bodo@meet.jitsi/1", "email": "", "display_name": "Bodo"}


@dataclass
class Census:
    app: FastAPI
    sync: EventSync
    sessions: async_sessionmaker[AsyncSession]
    prosody: FakeProsody
    prosody_url: str
    forum: str

    def client(self, url: str | None = None) -> ProsodyClient:
        settings = self.app.state.settings.model_copy(
            update={"jitsi_prosody_url": url or self.prosody_url}
        )
        return ProsodyClient(settings, retries=0, quiet=True)

    async def check(self, watch: CensusWatch, url: str | None = None) -> list[Mismatch]:
        async with self.client(url) as client:
            return await check_once(self.app.state, client, watch)


@pytest_asyncio.fixture
async def census(settings: Settings, session: AsyncSession) -> AsyncIterator[Census]:
    conference = await load_sample(session)
    forum = conference.forums[0].room
    assert forum is not None
    off = {"attendance_fold_seconds": None, "attendance_census_seconds": None}
    prosody = FakeProsody()
    app = create_app(settings.model_copy(update=off), clock=FrozenClock(DAY.replace(hour=10)))
    async with (
        serve(prosody.app()) as prosody_url,
        serve(app) as base_url,
        EventSync(f"{base_url}/jitsi", settings.jitsi_webhook_secret) as sync,
    ):
        yield Census(app, sync, app.state.sessions, prosody, prosody_url, forum.name)


def _logged(caplog: pytest.LogCaptureFixture, message: str, level: int) -> int:
    return sum(1 for r in caplog.records if r.message == message and r.levelno == level)


@pytest.mark.asyncio
async def test_events_waiting_for_the_fold_are_no_mismatch(
    census: Census, caplog: pytest.LogCaptureFixture
) -> None:
    room = Room(census.forum, at("10:00:00"))
    joined = [room.created(), room.join(new_jid(), at("10:01:00"), user("a", "Anna"))]
    assert [d.status for d in await census.sync.send_all(joined)] == [200, 200]
    assert await intervals(census.sessions, census.forum) == []  # accepted, not yet folded
    census.prosody.add_room(census.forum, [ANNA])
    watch = CensusWatch()
    with caplog.at_level(logging.DEBUG):
        assert await census.check(watch) == []
        assert await census.check(watch) == []
    assert len(await intervals(census.sessions, census.forum)) == 1  # the check folded first
    assert _logged(caplog, "attendance.census_mismatch", logging.WARNING) == 0


@pytest.mark.asyncio
async def test_a_mismatch_is_reported_when_it_lasts(
    census: Census, caplog: pytest.LogCaptureFixture
) -> None:
    room = Room(census.forum, at("10:00:00"))
    joined = [room.created(), room.join(new_jid(), at("10:01:00"), user("a", "Anna"))]
    await census.sync.send_all(joined)
    census.prosody.add_room(census.forum, [ANNA, BODO])  # Bodo's join is not here (yet)
    watch = CensusWatch()
    with caplog.at_level(logging.DEBUG):
        assert await census.check(watch) == []  # may still be on its way
        assert _logged(caplog, "attendance.census_mismatch", logging.WARNING) == 0
        assert await census.check(watch) == [Mismatch(census.forum, 1, 2)]
    assert _logged(caplog, "attendance.census_mismatch", logging.WARNING) == 1
    census.prosody.add_room(census.forum, [ANNA])  # Bodo left before we heard of him
    assert await census.check(watch) == []


@pytest.mark.asyncio
async def test_an_unreachable_prosody_is_reported_once_not_every_minute(
    census: Census, caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    nobody = f"http://127.0.0.1:{unused_tcp_port}"
    watch = CensusWatch()
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert await census.check(watch, nobody) == []
        unreachable = _logged(caplog, "attendance.census_unreachable", logging.WARNING)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        tries = _logged(caplog, "jitsi.prosody_unavailable", logging.DEBUG)
        retries = _logged(caplog, "jitsi.prosody_retry", logging.INFO)
        assert await census.check(watch) == []
    assert (unreachable, len(warnings), tries, retries) == (1, 1, 3, 0)
    assert _logged(caplog, "attendance.census_reachable", logging.INFO) == 1


def test_the_demo_runs_no_census_check_against_a_prosody_nobody_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORCH_JITSI_PROSODY_URL", raising=False)
    demo = demo_settings(Settings(_env_file=None), "127.0.0.1", 8001)
    assert demo.attendance_census_seconds is None
    assert demo.base_url == "http://127.0.0.1:8001"
    monkeypatch.setenv("ORCH_JITSI_PROSODY_URL", "http://127.0.0.1:5280")
    configured = demo_settings(Settings(_env_file=None), "127.0.0.1", 8001)
    assert configured.attendance_census_seconds == 60.0
