"""The reservation API as jitsi-meet's mod_reservations calls it, over real HTTP.

Bodies are built the way prosody builds them: `http.formencode` (prosody util/http.lua)
escapes every byte outside [A-Za-z0-9] of names and values as lowercase %xx, and
`start_time` is `os.date("!%Y-%m-%dT%H:%M:%S", os.time())` plus ".000Z"
(to_java_date_string in resources/prosody-plugins/mod_reservations.lua).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import FrozenClock
from orchestrator.conferences import repository
from orchestrator.conferences.models import Conference, SessionStatus
from orchestrator.conferences.service import plenary_room
from orchestrator.config import Settings
from orchestrator.rooms.models import Room, RoomReservation, RoomState
from orchestrator.rooms.reservations import format_time, parse_time
from orchestrator.web.app import create_app
from tests.conftest import load_sample
from tests.live import serve

PATH = "/jitsi/reservation/conference"
OWNER = "3f2c9a1b-7d4e@meet.jitsi"
FORUMS_START = datetime(2027, 3, 18, 10, 0, tzinfo=UTC)  # 11:00 Europe/Berlin
FORUM_CLOSES = FORUMS_START + timedelta(minutes=90 + 15)  # session end + close_after
OPENING_START = datetime(2027, 3, 18, 8, 30, tzinfo=UTC)  # 09:30 Europe/Berlin
OPENING_CLOSES = OPENING_START + timedelta(minutes=75 + 15)
CONFIGURED = "(the configured secret)"
ANSWER_KEYS = {"id", "name", "mail_owner", "start_time", "duration", "max_occupants", "lobby"}


def formencode(fields: dict[str, str]) -> str:
    """prosody util.http.formencode: bytes outside [A-Za-z0-9] as %xx, a space as '+'."""

    def part(text: str) -> str:
        return "".join(
            "+" if byte == 0x20 else chr(byte) if chr(byte).isalnum() else f"%{byte:02x}"
            for byte in text.encode()
        )

    return "&".join(f"{part(key)}={part(value)}" for key, value in fields.items())


def java_date(moment: datetime) -> str:
    """mod_reservations' to_java_date_string(os.time())."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"


@dataclass
class Prosody:
    """Calls the API exactly as mod_reservations does (reservations_api_headers included)."""

    client: httpx.AsyncClient
    clock: FrozenClock
    secret: str

    def headers(self, secret: str | None = CONFIGURED) -> dict[str, str]:
        """prosody's http_headers: its User-Agent plus reservations_api_headers."""
        given = self.secret if secret == CONFIGURED else secret
        headers = {"User-Agent": "Prosody (0.12.4; posix)"}
        if given is not None:
            headers["Authorization"] = f"Bearer {given}"
        return headers

    async def post_body(self, body: str, secret: str | None = CONFIGURED) -> httpx.Response:
        # net.http sets this Content-Type for every request with a body.
        headers = {**self.headers(secret), "Content-Type": "application/x-www-form-urlencoded"}
        return await self.client.post(PATH, content=body, headers=headers)

    async def create(self, name: str, secret: str | None = CONFIGURED) -> httpx.Response:
        fields = {"name": name, "start_time": java_date(self.clock.now), "mail_owner": OWNER}
        return await self.post_body(formencode(fields), secret)

    async def get(self, reservation_id: object) -> httpx.Response:
        return await self.client.get(f"{PATH}/{reservation_id}", headers=self.headers())

    async def delete(self, reservation_id: object) -> httpx.Response:
        return await self.client.delete(f"{PATH}/{reservation_id}", headers=self.headers())


@pytest_asyncio.fixture
async def prosody(settings: Settings) -> AsyncIterator[Prosody]:
    clock = FrozenClock(FORUMS_START + timedelta(minutes=15))
    assert settings.jitsi_webhook_secret
    async with (
        serve(create_app(settings, clock=clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        yield Prosody(client, clock, settings.jitsi_webhook_secret)


def _forum_room(conference: Conference, key: str = "sprache") -> Room:
    room = repository.forum_by_key(conference, key).room
    assert room is not None
    return room


def _opening_room(conference: Conference) -> Room:
    room = plenary_room(repository.session_by_key(conference, "opening"))
    assert room is not None
    return room


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> list[RoomReservation]:
    async with sessions() as fresh:
        statement = select(RoomReservation).order_by(RoomReservation.id)
        return list((await fresh.execute(statement)).scalars())


def _refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message"}
    assert isinstance(body["message"], str)
    assert body["message"]
    message: str = body["message"]
    return message


def test_prosody_encoding_and_date_format() -> None:
    body = formencode({"name": "forum-a", "start_time": "2027-03-18T10:15:00.000Z"})
    # Field names are escaped too: prosody really sends "start%5ftime" and "mail%5fowner".
    assert body == "name=forum%2da&start%5ftime=2027%2d03%2d18T10%3a15%3a00%2e000Z"
    moment = datetime(2048, 4, 20, 17, 55, 12, 345678, tzinfo=UTC)
    assert format_time(moment) == "2048-04-20T17:55:12.345Z"
    assert parse_time("2048-04-20T17:55:12.000Z") == moment.replace(microsecond=0)
    assert parse_time("20. April") is None


@pytest.mark.asyncio
async def test_forum_room_allowed_inside_its_window(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    response = await prosody.create(room.name)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    [stored] = await _stored(sessions)
    assert answer == {
        "id": str(stored.id),
        "name": room.name,
        "mail_owner": OWNER,
        "start_time": java_date(prosody.clock.now),
        "duration": int((FORUM_CLOSES - prosody.clock.now).total_seconds()),
        "max_occupants": 100,
        "lobby": False,
    }
    assert answer["duration"] == 5400
    assert type(answer["id"]) is str  # Lua 5.4 would turn a JSON number into 1.0
    assert type(answer["duration"]) is int
    assert type(answer["max_occupants"]) is int
    assert answer["lobby"] is False
    assert (stored.room_id, stored.name, stored.mail_owner) == (room.id, room.name, OWNER)
    assert stored.start_time == prosody.clock.now
    assert stored.duration == 5400
    assert stored.deleted_at is None


@pytest.mark.asyncio
async def test_plenary_room_answers_lobby_and_size_of_its_template(
    session: AsyncSession, prosody: Prosody
) -> None:
    room = _opening_room(await load_sample(session))
    prosody.clock.set(OPENING_START + timedelta(minutes=30))
    answer = (await prosody.create(room.name)).json()
    assert set(answer) == ANSWER_KEYS
    assert answer["lobby"] is True
    assert answer["max_occupants"] == 500
    assert answer["duration"] == 3600 == (OPENING_CLOSES - prosody.clock.now).total_seconds()


@pytest.mark.asyncio
async def test_uppercase_name_is_matched_and_answered_lowercase(
    session: AsyncSession, prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    response = await prosody.create(room.name.upper())
    assert response.status_code == 201, response.text
    assert response.json()["name"] == room.name == room.name.upper().lower()


@pytest.mark.asyncio
async def test_template_without_max_occupants_leaves_the_field_out(
    session: AsyncSession, prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    room.template = "hybrid-room-system"  # lobby false, no max_occupants, close_after 30 min
    await session.commit()
    answer = (await prosody.create(room.name)).json()
    assert set(answer) == ANSWER_KEYS - {"max_occupants"}
    assert answer["lobby"] is False
    assert answer["duration"] == 5400 + 15 * 60


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("moment", "status"),
    [
        (FORUMS_START - timedelta(minutes=15, seconds=1), 403),  # a second before it opens
        (FORUM_CLOSES, 403),  # the window is closed at its end
        (FORUM_CLOSES + timedelta(hours=3), 403),
    ],
    ids=["too-early", "at-close", "too-late"],
)
async def test_outside_the_window_is_refused(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    prosody: Prosody,
    moment: datetime,
    status: int,
) -> None:
    room = _forum_room(await load_sample(session))
    prosody.clock.set(moment)
    _refused(await prosody.create(room.name), status)
    assert await _stored(sessions) == []


@pytest.mark.asyncio
async def test_window_edges_are_allowed_with_exact_durations(
    session: AsyncSession, prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    prosody.clock.set(FORUMS_START - timedelta(minutes=15))
    first = (await prosody.create(room.name)).json()
    assert first["duration"] == 7200
    assert (await prosody.delete(first["id"])).status_code == 204
    prosody.clock.set(FORUM_CLOSES - timedelta(seconds=1))
    assert (await prosody.create(room.name)).json()["duration"] == 1


@pytest.mark.asyncio
async def test_unknown_room_is_refused(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], prosody: Prosody
) -> None:
    await load_sample(session)
    _refused(await prosody.create("someone-elses-room"), 404)
    # The handbook's example body (upper-case escapes, as Jicofo sent it) decodes the same.
    body = "name=testroom1&start_time=2048-04-20T17%3A55%3A12.000Z&mail_owner=client1%40xmpp.com"
    _refused(await prosody.post_body(body), 404)
    assert await _stored(sessions) == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "manual", [RoomState.ENDED, RoomState.CLOSED, None], ids=["ended", "closed", "cancelled"]
)
async def test_ended_closed_or_cancelled_room_is_refused(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    prosody: Prosody,
    manual: RoomState | None,
) -> None:
    room = _forum_room(await load_sample(session))
    if manual is None:
        assert room.session is not None
        room.session.status = SessionStatus.CANCELLED
    room.manual_state = manual
    await session.commit()
    message = _refused(await prosody.create(room.name), 403)
    expected = {RoomState.ENDED: "beendet", RoomState.CLOSED: "geschlossen", None: "abgesagt"}
    assert expected[manual] in message
    assert await _stored(sessions) == []


@pytest.mark.asyncio
async def test_room_opened_early_by_a_moderator_is_allowed(
    session: AsyncSession, prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    room.manual_state = RoomState.OPEN
    await session.commit()
    prosody.clock.set(FORUMS_START - timedelta(hours=1))
    response = await prosody.create(room.name)
    assert response.status_code == 201, response.text
    assert response.json()["duration"] == (FORUM_CLOSES - prosody.clock.now).total_seconds()


@pytest.mark.asyncio
async def test_extended_room_lives_until_the_extension(
    session: AsyncSession, prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    room.extended_until = FORUM_CLOSES + timedelta(minutes=30)
    await session.commit()
    prosody.clock.set(FORUM_CLOSES + timedelta(minutes=10))
    assert (await prosody.create(room.name)).json()["duration"] == 20 * 60


@pytest.mark.asyncio
@pytest.mark.parametrize("secret", [None, "wrong-secret"], ids=["missing", "wrong"])
async def test_without_the_bearer_secret_nothing_happens(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    prosody: Prosody,
    secret: str | None,
) -> None:
    room = _forum_room(await load_sample(session))
    assert (await prosody.create(room.name, secret=secret)).status_code == 401
    assert await _stored(sessions) == []
    allowed = await prosody.create(room.name)
    assert allowed.status_code == 201
    for call in (prosody.client.get, prosody.client.delete):
        response = await call(f"{PATH}/{allowed.json()['id']}", headers=prosody.headers(secret))
        assert response.status_code == 401
    [stored] = await _stored(sessions)
    assert stored.deleted_at is None


@pytest.mark.asyncio
async def test_conflict_points_to_the_reservation_and_get_answers_it(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    first = (await prosody.create(room.name)).json()
    prosody.clock.advance(timedelta(minutes=5))
    conflict = await prosody.create(room.name)
    assert conflict.status_code == 409
    assert conflict.json() == {"conflict_id": first["id"]}
    fetched = await prosody.get(conflict.json()["conflict_id"])
    assert fetched.status_code == 200  # prosody accepts only 200 here
    assert fetched.json() == first  # start_time + duration still end at the window's close
    assert len(await _stored(sessions)) == 1


@pytest.mark.asyncio
async def test_delete_releases_and_a_new_post_reserves_afresh(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], prosody: Prosody
) -> None:
    room = _forum_room(await load_sample(session))
    first = (await prosody.create(room.name)).json()
    prosody.clock.advance(timedelta(minutes=20))
    deleted = await prosody.delete(first["id"])
    assert deleted.status_code == 204
    assert deleted.content == b""
    [stored] = await _stored(sessions)
    assert stored.deleted_at == prosody.clock.now
    again = await prosody.delete(first["id"])  # prosody retries on failure: idempotent
    assert again.status_code == 204
    [stored] = await _stored(sessions)
    assert stored.deleted_at == prosody.clock.now
    _refused(await prosody.get(first["id"]), 404)
    fresh = await prosody.create(room.name)
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first["id"]
    assert fresh.json()["duration"] == first["duration"] - 20 * 60
    assert len(await _stored(sessions)) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("reservation_id", ["999999", "abc", "1" * 40])
async def test_unknown_reservation_id_is_404_with_message(
    session: AsyncSession, prosody: Prosody, reservation_id: str
) -> None:
    await load_sample(session)
    _refused(await prosody.delete(reservation_id), 404)
    _refused(await prosody.get(reservation_id), 404)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fields",
    [
        {"start_time": "2027-03-18T10:15:00.000Z", "mail_owner": OWNER},
        {"name": "", "start_time": "2027-03-18T10:15:00.000Z", "mail_owner": OWNER},
        {"name": "ROOM", "mail_owner": OWNER},
        {"name": "ROOM", "start_time": "morgen", "mail_owner": OWNER},
    ],
    ids=["no-name", "empty-name", "no-start-time", "bad-start-time"],
)
async def test_malformed_form_is_refused_with_a_message(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    prosody: Prosody,
    fields: dict[str, str],
) -> None:
    room = _forum_room(await load_sample(session))
    fields = {key: room.name if value == "ROOM" else value for key, value in fields.items()}
    _refused(await prosody.post_body(formencode(fields)), 400)
    assert await _stored(sessions) == []


@pytest.mark.asyncio
async def test_an_id_that_lua_printed_as_a_float_still_finds_the_reservation(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], prosody: Prosody
) -> None:
    """A deployment whose prosody stored a numeric id asks for `/conference/7.0`."""
    room = _forum_room(await load_sample(session))
    first = (await prosody.create(room.name)).json()
    fetched = await prosody.get(f"{first['id']}.0")
    assert fetched.status_code == 200
    assert fetched.json() == first
    assert (await prosody.delete(f"{first['id']}.0")).status_code == 204
    [stored] = await _stored(sessions)
    assert stored.deleted_at == prosody.clock.now
    for wrong in ("7.5", "1e3", "٣", "-1", ".0"):
        _refused(await prosody.get(wrong), 404)
