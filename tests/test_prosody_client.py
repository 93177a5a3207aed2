"""The prosody HTTP client against a real loopback server answering like muc_size/census/end."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import FrozenClock
from orchestrator.conferences import repository
from orchestrator.config import Settings, prepare
from orchestrator.jitsi.client import (
    JitsiRequestError,
    JitsiUnavailableError,
    Participant,
    ProsodyClient,
)
from orchestrator.rooms.models import Room, RoomState
from orchestrator.web.app import create_app
from tests.conftest import API_KEY, load_sample
from tests.fake_prosody import FakeProsody
from tests.live import serve

ANNA = {"jid": "r@muc.meet.jitsi/a1b2", "email": "anna@example.org", "display_name": "Anna"}
BODO = {"jid": "r@muc.meet.jitsi/c3d4", "email": "", "display_name": "Bodo"}
FORUMS_START = datetime(2027, 3, 18, 10, 0, tzinfo=UTC)  # sample forums, 11:00 CET


def _settings(tmp_path: Path, prosody_url: str, **update: object) -> Settings:
    """Fast settings for the client: tiny timeouts, the default two retries."""
    base = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        jitsi_prosody_url=prosody_url,
        jitsi_http_timeout=0.2,
    )
    return prepare(base.model_copy(update=update))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Prosody:
    fake: FakeProsody
    url: str


@pytest_asyncio.fixture
async def prosody() -> AsyncIterator[Prosody]:
    fake = FakeProsody()
    async with serve(fake.app()) as url:
        yield Prosody(fake, url)


def _client(settings: Settings) -> ProsodyClient:
    return ProsodyClient(settings, backoff=0.01)


@pytest.mark.asyncio
async def test_room_size_and_participants(prosody: Prosody, tmp_path: Path) -> None:
    prosody.fake.add_room("forum-a", [ANNA, BODO])
    async with _client(_settings(tmp_path, prosody.url)) as client:
        assert await client.room_size("forum-a") == 2
        assert await client.room_participants("Forum-A") == [
            Participant(**ANNA),
            Participant(**BODO),
        ]
    assert prosody.fake.seen[0].query == {"room": "forum-a", "domain": "meet.jitsi"}


@pytest.mark.asyncio
async def test_room_not_running_is_empty(prosody: Prosody, tmp_path: Path) -> None:
    prosody.fake.add_room("only-focus", [])
    async with _client(_settings(tmp_path, prosody.url)) as client:
        assert await client.room_size("nobody-here") == 0
        assert await client.room_participants("nobody-here") == []
        assert await client.room_participants("only-focus") == []  # cjson's {}
    assert [seen.path for seen in prosody.fake.seen] == ["/room-size", "/room", "/room"]


@pytest.mark.asyncio
async def test_census(prosody: Prosody, tmp_path: Path) -> None:
    settings = _settings(tmp_path, prosody.url)
    async with _client(settings) as client:
        assert await client.census() == []
        prosody.fake.add_room("forum-a", [ANNA, BODO], created_ms=1_805_364_000_123)
        prosody.fake.add_room("plenum", [ANNA], leaked=True)
        rooms = {room.name: room for room in await client.census()}
    assert rooms["forum-a"].room_name == "forum-a@muc.meet.jitsi"
    assert rooms["forum-a"].participants == 2
    assert rooms["forum-a"].created_time == datetime(2027, 3, 18, 10, 0, 0, 123000, tzinfo=UTC)
    assert rooms["plenum"].created_time is None
    assert rooms["plenum"].leaked is True


@pytest.mark.asyncio
async def test_timeouts_are_retried_then_unavailable(prosody: Prosody, tmp_path: Path) -> None:
    prosody.fake.delay = 0.5
    started = time.monotonic()
    async with _client(_settings(tmp_path, prosody.url, jitsi_http_timeout=0.1)) as client:
        with pytest.raises(JitsiUnavailableError) as caught:
            await client.room_size("forum-a")
    assert time.monotonic() - started < 1.5
    assert len(prosody.fake.seen) == 3
    assert caught.value.status_code == 503
    assert "nicht erreichbar" in caught.value.message
    assert caught.value.details == {"error": "ReadTimeout", "attempts": 3}


@pytest.mark.asyncio
async def test_5xx_recovers_within_the_retries(prosody: Prosody, tmp_path: Path) -> None:
    prosody.fake.add_room("forum-a", [ANNA])
    prosody.fake.failures = 2
    async with _client(_settings(tmp_path, prosody.url)) as client:
        assert await client.room_size("forum-a") == 1
    assert len(prosody.fake.seen) == 3


@pytest.mark.asyncio
async def test_persistent_5xx_is_unavailable(prosody: Prosody, tmp_path: Path) -> None:
    prosody.fake.failures = 100
    prosody.fake.failure_status = 503
    async with _client(_settings(tmp_path, prosody.url, jitsi_http_retries=1)) as client:
        with pytest.raises(JitsiUnavailableError) as caught:
            await client.census()
    assert len(prosody.fake.seen) == 2
    assert caught.value.details == {"error": "HTTP 503", "attempts": 2}


@pytest.mark.asyncio
async def test_connection_refused_is_unavailable(tmp_path: Path) -> None:
    settings = _settings(tmp_path, f"http://127.0.0.1:{_free_port()}")
    async with _client(settings) as client:
        with pytest.raises(JitsiUnavailableError) as caught:
            await client.room_participants("forum-a")
    assert caught.value.details == {"error": "ConnectError", "attempts": 3}


@pytest.mark.asyncio
async def test_4xx_and_garbage_are_request_errors(prosody: Prosody, tmp_path: Path) -> None:
    prosody.fake.forbidden = True  # enable_roomsize_token_verification without our token
    async with _client(_settings(tmp_path, prosody.url)) as client:
        with pytest.raises(JitsiRequestError) as caught:
            await client.room_size("forum-a")
        assert caught.value.status_code == 502
        assert len(prosody.fake.seen) == 1  # a refusal is not retried
        prosody.fake.forbidden = False
        prosody.fake.broken = True
        with pytest.raises(JitsiRequestError, match="unbekanntem Format"):
            await client.census()


@pytest.mark.asyncio
async def test_end_meeting_with_a_token_prosody_verifies(prosody: Prosody, tmp_path: Path) -> None:
    settings = _settings(tmp_path, prosody.url)
    prosody.fake.app_secret = settings.require("jitsi_app_secret")
    prosody.fake.add_room("forum-a", [ANNA])
    async with _client(settings) as client:
        assert await client.end_meeting("forum-a") is True
        assert await client.end_meeting("forum-a") is False  # 404: not running any more
    assert prosody.fake.ended == ["forum-a@muc.meet.jitsi"]
    assert prosody.fake.seen[0].query == {"conference": "forum-a@muc.meet.jitsi"}
    claims = prosody.fake.claims[0]
    assert claims["iss"] == claims["aud"] == "orchestrator"
    assert claims["sub"] == "meet.jitsi"
    assert claims["room"] == "forum-a"
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.asyncio
async def test_end_meeting_signed_with_another_secret_is_refused(
    prosody: Prosody, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, prosody.url)
    prosody.fake.app_secret = "not-the-orchestrator-secret-0123456789"
    prosody.fake.add_room("forum-a", [ANNA])
    async with _client(settings) as client:
        with pytest.raises(JitsiRequestError, match="HTTP 401"):
            await client.end_meeting("forum-a")
    assert prosody.fake.ended == []


# The live endpoint over real HTTP, with the database on both backends.


@dataclass
class LiveApp:
    http: httpx.AsyncClient
    room: Room


@asynccontextmanager
async def _live_app(settings: Settings, room: Room, prosody_url: str) -> AsyncIterator[LiveApp]:
    """The app on loopback with a frozen clock at the forums' start, prosody at `prosody_url`."""
    app_settings = settings.model_copy(update={"jitsi_prosody_url": prosody_url})
    app = create_app(app_settings, clock=FrozenClock(FORUMS_START))
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as http,
    ):
        yield LiveApp(http, room)


async def _forum_room(session: AsyncSession) -> Room:
    conference = await load_sample(session)
    room = repository.forum_by_key(conference, "sprache").room
    assert room is not None
    return room


@pytest_asyncio.fixture
async def live_app(
    settings: Settings, session: AsyncSession, prosody: Prosody
) -> AsyncIterator[LiveApp]:
    room = await _forum_room(session)
    async with _live_app(settings, room, prosody.url) as live:
        prosody.fake.app_secret = settings.require("jitsi_app_secret")
        yield live


@pytest.mark.asyncio
async def test_live_room_by_id_and_by_name(live_app: LiveApp, prosody: Prosody) -> None:
    prosody.fake.add_room(live_app.room.name, [ANNA, BODO])
    answer = await live_app.http.get(f"/api/v1/rooms/{live_app.room.id}/live")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "room": live_app.room.name,
        "kind": "forum",
        "forum": "sprache",
        "state": "open",
        "participants": 2,
        "people": [ANNA, BODO],
        "source": "prosody",
    }
    by_name = await live_app.http.get(f"/api/v1/rooms/{live_app.room.name}/live")
    assert by_name.json() == answer.json()
    assert (await live_app.http.get("/api/v1/rooms/999999/live")).status_code == 404
    assert (await live_app.http.get("/api/v1/rooms/no-such-room/live")).status_code == 404


@pytest.mark.asyncio
async def test_live_room_when_prosody_is_down(settings: Settings, session: AsyncSession) -> None:
    room = await _forum_room(session)
    async with _live_app(settings, room, f"http://127.0.0.1:{_free_port()}") as live:
        answer = await live.http.get(f"/api/v1/rooms/{room.id}/live")
        assert answer.status_code == 503
        assert answer.json()["code"] == "jitsi_unavailable"
        assert "nicht erreichbar" in answer.json()["detail"]
        assert (await live.http.get("/healthz")).status_code == 200
        assert (await live.http.get("/api/v1/conferences")).status_code == 200
        ended = await live.http.post(f"/api/v1/rooms/{room.id}/end")
        assert ended.status_code == 503
    await session.refresh(room)
    assert room.manual_state is None  # prosody first: a failed end changes nothing


@pytest.mark.asyncio
async def test_live_room_when_prosody_answers_5xx(live_app: LiveApp, prosody: Prosody) -> None:
    prosody.fake.failures = 100
    answer = await live_app.http.get(f"/api/v1/rooms/{live_app.room.id}/live")
    assert answer.status_code == 503
    assert answer.json()["details"] == {"error": "HTTP 500", "attempts": 3}
    assert len(prosody.fake.seen) == 3


@pytest.mark.asyncio
async def test_end_room_ends_the_meeting_and_the_room(live_app: LiveApp, prosody: Prosody) -> None:
    prosody.fake.add_room(live_app.room.name, [ANNA])
    answer = await live_app.http.post(f"/api/v1/rooms/{live_app.room.id}/end")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"room": live_app.room.name, "state": "ended", "was_running": True}
    assert prosody.fake.ended == [f"{live_app.room.name}@muc.meet.jitsi"]
    live = await live_app.http.get(f"/api/v1/rooms/{live_app.room.name}/live")
    assert live.json()["state"] == RoomState.ENDED
    assert live.json()["participants"] == 0
