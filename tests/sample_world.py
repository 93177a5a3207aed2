"""The sample conference with a few people in it, served over real HTTP on a frozen clock.

Shared by the tests of the personal links: the join links /j/… and the personal page /p/….
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Conference
from orchestrator.conferences.service import plenary_room
from orchestrator.config import Settings
from orchestrator.participants.assignment import set_override
from orchestrator.participants.models import Language, Person, Role
from orchestrator.web.app import create_app
from tests.conftest import load_sample
from tests.live import serve

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(hour: int, minute: int = 0) -> datetime:
    """A wall-clock time on the sample conference's day."""
    return datetime(2027, 3, 18, hour, minute, tzinfo=BERLIN)


@dataclass
class World:
    conference: Conference
    rooms: dict[str, str]  # forum key or plenary session key -> Jitsi room name
    people: dict[str, Person]


async def add_person(
    session: AsyncSession, conference: Conference, label: str, role: Role, forum: str | None = None
) -> Person:
    """label@example.org, "Label Muster" (markup for "evil"), English for "emma", else German;
    seated in `forum`, or for "waiting" put on the waiting list."""
    names = {"evil": "<script>alert(1)</script>"}
    person = Person(conference_id=conference.id, email=f"{label}@example.org", role=role)
    person.first_name, person.last_name = names.get(label, label.capitalize()), "Muster"
    person.language = Language.EN if label == "emma" else Language.DE
    session.add(person)
    await session.flush()
    if forum is not None or label == "waiting":  # None: onto the waiting list
        await set_override(session, conference, person.id, forum, force=True)
    return person


async def sample_world(session: AsyncSession, specs: list[tuple[str, Role, str | None]]) -> World:
    """The sample conference, its Jitsi rooms, and these people (label, role, forum); the
    people are flushed, not committed."""
    conference = await load_sample(session)
    rooms = {forum.key: forum.room.name for forum in conference.forums if forum.room}
    rooms |= {item.key: room.name for item in conference.sessions if (room := plenary_room(item))}
    people = {spec[0]: await add_person(session, conference, *spec) for spec in specs}
    return World(conference, rooms, people)


@dataclass
class LiveApp:
    """The app served on loopback: a client that follows no redirect, and the app's clock."""

    client: httpx.AsyncClient
    clock: FrozenClock
    settings: Settings


@asynccontextmanager
async def serve_frozen(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app on `clock` over real HTTP, and a client for it that follows no redirect."""
    async with (
        serve(create_app(settings, clock=clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30) as client,
    ):
        yield client
