"""Room rules: names, window, state over the day, who may enter, who moderates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences import repository
from orchestrator.conferences.models import Conference, SessionStatus
from orchestrator.conferences.service import plenary_room
from orchestrator.participants.models import Assignment, AssignmentStatus, Person, Role
from orchestrator.rooms import service
from orchestrator.rooms.models import Room, RoomState, new_room_name
from orchestrator.rooms.templates import load_templates
from tests.conftest import load_sample

TEMPLATES = load_templates()
FORUM = TEMPLATES["forum"]
BERLIN_11_00 = datetime(2027, 3, 18, 10, 0, tzinfo=UTC)  # forums start 11:00 CET


def test_room_names_are_lowercase_unguessable_and_distinct() -> None:
    names = {new_room_name("Forum Ärger & Co") for _ in range(1000)}
    assert len(names) == 1000
    assert all(re.fullmatch(r"[a-z0-9-]+", name) for name in names)
    assert all(name.startswith("forum-arger-co-") for name in names)


def _forum_room(conference: Conference, key: str = "sprache") -> Room:
    room = repository.forum_by_key(conference, key).room
    assert room is not None
    return room


@pytest.mark.asyncio
async def test_forum_room_window_and_state_through_the_day(session: AsyncSession) -> None:
    conference = await load_sample(session)
    room = _forum_room(conference)
    assert room.session is not None
    span = service.window(room, room.session, FORUM)
    assert span.opens_at == BERLIN_11_00 - timedelta(minutes=15)
    assert span.closes_at == BERLIN_11_00 + timedelta(minutes=90 + 15)
    timeline = [
        (span.opens_at - timedelta(seconds=1), RoomState.SCHEDULED),
        (span.opens_at, RoomState.OPEN),
        (span.closes_at - timedelta(seconds=1), RoomState.OPEN),
        (span.closes_at, RoomState.CLOSED),
    ]
    for moment, expected in timeline:
        assert service.state(room, room.session, FORUM, moment) is expected


@pytest.mark.asyncio
async def test_moderator_overrides_beat_the_timeline(session: AsyncSession) -> None:
    conference = await load_sample(session)
    room = _forum_room(conference)
    early = BERLIN_11_00 - timedelta(hours=1)
    room.manual_state = RoomState.OPEN
    assert service.state(room, room.session, FORUM, early) is RoomState.OPEN
    room.manual_state = RoomState.CLOSED
    assert service.state(room, room.session, FORUM, BERLIN_11_00) is RoomState.CLOSED
    room.manual_state = None
    room.extended_until = BERLIN_11_00 + timedelta(hours=3)
    late = BERLIN_11_00 + timedelta(hours=2)
    assert service.state(room, room.session, FORUM, late) is RoomState.OPEN
    room.manual_state = RoomState.ENDED
    assert service.state(room, room.session, FORUM, BERLIN_11_00) is RoomState.ENDED


@pytest.mark.asyncio
async def test_cancelled_session_closes_its_room(session: AsyncSession) -> None:
    conference = await load_sample(session)
    room = _forum_room(conference)
    assert room.session is not None
    room.session.status = SessionStatus.CANCELLED
    assert service.state(room, room.session, FORUM, BERLIN_11_00) is RoomState.CLOSED


def _person(role: Role, forum_id: int | None, status: AssignmentStatus) -> Person:
    assignments = (
        [] if forum_id is None else [Assignment(forum_id=forum_id, session_id=0, status=status)]
    )
    return Person(email="x@example.org", role=role, assignments=assignments)


@pytest.mark.asyncio
async def test_who_may_enter_and_who_moderates(session: AsyncSession) -> None:
    conference = await load_sample(session)
    sprache, werte = _forum_room(conference, "sprache"), _forum_room(conference, "werte")
    opening = plenary_room(repository.session_by_key(conference, "opening"))
    assert opening is not None
    seated = AssignmentStatus.ASSIGNED
    participant = _person(Role.PARTICIPANT, sprache.forum_id, seated)
    waiting = _person(Role.PARTICIPANT, sprache.forum_id, AssignmentStatus.WAITLISTED)
    moderator = _person(Role.MODERATOR, sprache.forum_id, seated)
    organiser = _person(Role.ORGANISER, None, seated)
    device = _person(Role.ROOM_SYSTEM, sprache.forum_id, seated)
    assert service.may_enter(participant, sprache) and not service.may_enter(participant, werte)
    assert not service.may_enter(waiting, sprache) and service.may_enter(waiting, opening)
    assert service.may_enter(organiser, werte)
    plenary = TEMPLATES["plenary"]
    assert service.is_moderator(moderator, sprache, FORUM)
    assert not service.is_moderator(moderator, werte, FORUM)
    assert not service.is_moderator(moderator, opening, plenary)
    assert not service.is_moderator(participant, sprache, FORUM)
    assert service.is_moderator(organiser, werte, FORUM)
    device_template = service.template_for(device, sprache, TEMPLATES)
    assert device_template.key == "hybrid-room-system"
    assert service.is_moderator(device, sprache, device_template)
    assert service.template_for(device, opening, TEMPLATES).key == "plenary"


@pytest.mark.asyncio
async def test_find_by_name_is_case_insensitive(session: AsyncSession) -> None:
    conference = await load_sample(session)
    room = _forum_room(conference)
    found = await service.find_by_name(session, room.name.upper())
    assert found is not None and found.id == room.id
    assert await service.find_by_name(session, "nope") is None
