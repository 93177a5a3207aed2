"""The chain under test: our orchestrator served on loopback, a real prosody calling it, a focus.

The sample conference is moved to today, in a time zone where it is now about noon, so that
our windows, the JWT's nbf/exp and prosody's clock (reservation start_time, duration) all
agree on the real time: the opening plenary (template with lobby) and the forums are open,
the closing plenary is hours away.
"""

from __future__ import annotations

import contextlib
import secrets
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.schemas import ConferenceSpec
from orchestrator.conferences.service import import_spec, plenary_room
from orchestrator.config import Settings, prepare
from orchestrator.jitsi.tokens import JitsiUser, mint
from orchestrator.participants.models import Person, Role
from orchestrator.rooms.models import RoomReservation
from orchestrator.web.app import create_app
from tests.conftest import API_KEY, SAMPLE_TOML
from tests.live import serve
from tests.prosody.clients import Focus, Participant
from tests.prosody.compose import ProsodyEnv, prosody_env
from tests.prosody.server import ProsodyServer, free_port
from tests.sample_world import add_person

PEOPLE = [
    ("anna", Role.PARTICIPANT, "sprache"),
    ("ben", Role.PARTICIPANT, "sprache"),
    ("mo", Role.MODERATOR, "sprache"),
    ("rita", Role.REFERENT, "arbeit"),
    ("olga", Role.ORGANISER, None),
]


def noon_zone(now: datetime) -> tuple[str, datetime]:
    """An Etc/GMT zone where `now` falls between 12:00 and 13:00, and `now` there."""
    offset = 12 - now.astimezone(UTC).hour  # -11 .. +12, all valid Etc/GMT zones
    name = "Etc/GMT" + (f"{-offset:+d}" if offset else "")
    return name, now.astimezone(UTC) + timedelta(hours=offset)


def conference_spec(now: datetime) -> ConferenceSpec:
    """The sample conference on today's date: opening 11:30-14:30, forums 11:00-14:00,
    closing plenary 20:00-21:00 (local time of `noon_zone`)."""
    data: dict[str, Any] = tomllib.loads(SAMPLE_TOML.read_text(encoding="utf-8"))
    zone, local = noon_zone(now)
    data["conference"] |= {"timezone": zone, "date": local.date().isoformat(), "reminders": []}
    times = {
        "opening": ("11:30", "14:30"),
        "forums": ("11:00", "14:00"),
        "results": ("20:00", "21:00"),
    }
    for item in data["sessions"]:
        item["start"], item["end"] = times[item["key"]]
    return ConferenceSpec.model_validate(data)


@dataclass
class Lane:
    """Everything a test of the lane needs, and the clients it opened (closed at the end)."""

    env: ProsodyEnv
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    api: httpx.AsyncClient
    prosody: ProsodyServer
    focus: Focus
    conference: Conference
    rooms: dict[str, str]  # forum key or plenary session key -> room name
    people: dict[str, Person]
    clients: list[Participant] = field(default_factory=list)

    def room_jid(self, key_or_name: str) -> str:
        return f"{self.rooms.get(key_or_name, key_or_name)}@{self.env.muc_domain}"

    async def token(self, label: str, key: str) -> str:
        """The JWT our join link /j/{token}/{room} redirects this person to Jitsi with."""
        room = self.rooms[key]
        response = await self.api.get(f"/j/{self.people[label].token}/{room}")
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return query["jwt"][0]

    async def participant(self, room: str, token: str | None) -> Participant:
        """A connected, logged-in browser connection for `room` (RefusedError if login fails)."""
        client = Participant(self.prosody.websocket_url(), self.env.domain, room, token)
        self.clients.append(client)
        await client.start()
        return client

    async def enter(self, label: str, key: str, nick: str | None = None) -> Participant:
        """`label` follows their join link into `key`'s meeting: login, conference, MUC."""
        client = await self.participant(self.rooms[key], await self.token(label, key))
        await client.join(self.room_jid(key), nick or label, label.capitalize())
        return client

    async def reservations(self, key: str) -> list[RoomReservation]:
        """Our reservation rows for the room, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(RoomReservation)
                .where(RoomReservation.name == self.rooms.get(key, key))
                .order_by(RoomReservation.id)
            )
            return list(rows)

    async def restart_prosody(self) -> None:
        """Prosody crashes and comes back on the same ports; the focus logs in again."""
        self.prosody.crash()
        with contextlib.suppress(Exception):
            self.focus.drop()
        self.prosody.start()
        self.focus = Focus(
            self.prosody.websocket_url(), self.env.auth_domain, self.env.focus_password
        )
        await self.focus.start()

    def mint(self, label: str, key: str) -> str:
        """A valid token for `key` made with our token code directly, for a room whose join
        link would not hand one out (outside its window)."""
        person, now = self.people[label], datetime.now(UTC)
        user = JitsiUser(id=str(person.id), name=label, email=person.email, moderator=False)
        return mint(
            app_id=self.settings.jitsi_app_id,
            secret=self.settings.require("jitsi_app_secret"),
            domain=self.settings.jitsi_domain,
            room=self.rooms[key],
            user=user,
            not_before=now - timedelta(minutes=5),
            expires=now + timedelta(hours=1),
        )

    async def close_clients(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                with contextlib.suppress(Exception):
                    await client.disconnect(wait=1)


async def _world(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> tuple[Conference, dict[str, str], dict[str, Person]]:
    async with sessions() as session:
        outcome = await import_spec(session, conference_spec(now))
        conference = outcome.conference
        people = {
            label: await add_person(session, conference, label, role, forum)
            for label, role, forum in PEOPLE
        }
        await session.commit()
        conference = await get_by_slug(session, conference.slug)
        rooms = {forum.key: forum.room.name for forum in conference.forums if forum.room}
        rooms |= {
            item.key: room.name for item in conference.sessions if (room := plenary_room(item))
        }
        return conference, rooms, people


@contextlib.asynccontextmanager
async def running_lane(
    database_url: str, data_dir: Path, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Lane]:
    """Orchestrator on loopback, prosody pointed at it and it at prosody, the focus logged in."""
    webhook_secret = secrets.token_urlsafe(24)
    env = prosody_env(
        {
            "JWT_APP_ID": "orchestrator",
            "JWT_APP_SECRET": secrets.token_urlsafe(32),
            "ORCH_JITSI_WEBHOOK_SECRET": webhook_secret,
            "PUBLIC_URL": "https://meet.example.org",
            "JICOFO_AUTH_PASSWORD": secrets.token_urlsafe(16),
            "JVB_AUTH_PASSWORD": secrets.token_urlsafe(16),
        }
    )
    http_port = free_port()
    settings = prepare(
        Settings(
            _env_file=None,
            data_dir=data_dir,
            database_url=database_url,
            api_key=API_KEY,
            base_url="http://orchestrator.test",
            jitsi_base_url=env.get("PUBLIC_URL"),
            jitsi_app_id=env.app_id,
            jitsi_app_secret=env.app_secret,
            jitsi_domain=env.domain,
            jitsi_prosody_url=f"http://127.0.0.1:{http_port}",
            jitsi_webhook_secret=webhook_secret,
            attendance_fold_seconds=1.0,
        )
    )
    conference, rooms, people = await _world(sessions, datetime.now(UTC))
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        ) as api,
    ):
        prosody = ProsodyServer(env, base_url, webhook_secret, http_port=http_port)
        try:
            prosody.start()
            focus = Focus(prosody.websocket_url(), env.auth_domain, env.focus_password)
            await focus.start()
            lane = Lane(env, settings, sessions, api, prosody, focus, conference, rooms, people)
            try:
                yield lane
            finally:
                await lane.close_clients()
                with contextlib.suppress(Exception):
                    await focus.disconnect(wait=1)
        finally:
            prosody.stop()
            print(f"--- prosody log ({prosody.layout.root}) ---\n{prosody.log()[-12000:]}")
            prosody.close()
