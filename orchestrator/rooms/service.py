"""The rules of a room: its window, its state now, who may enter and who moderates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from orchestrator.conferences.models import ConferenceSession, SessionStatus
from orchestrator.errors import NotFoundError
from orchestrator.participants.models import AssignmentStatus, Person, Role
from orchestrator.rooms.models import Room, RoomKind, RoomState
from orchestrator.rooms.templates import RoomTemplate

ROOM_SYSTEM_TEMPLATE = "hybrid-room-system"


@dataclass(frozen=True)
class Window:
    """When a room may be entered: the session plus the template's lead and grace."""

    opens_at: datetime
    closes_at: datetime

    def contains(self, now: datetime) -> bool:
        return self.opens_at <= now < self.closes_at


def window(room: Room, session: ConferenceSession, template: RoomTemplate) -> Window:
    closes_at = session.ends_at + template.close_after
    if room.extended_until is not None and room.extended_until > closes_at:
        closes_at = room.extended_until
    return Window(session.starts_at - template.open_before, closes_at)


def state(
    room: Room, session: ConferenceSession | None, template: RoomTemplate, now: datetime
) -> RoomState:
    """The room's state now: a moderator's end or close wins, then the timeline."""
    if room.manual_state in (RoomState.ENDED, RoomState.CLOSED):
        return room.manual_state
    if session is None or session.status is SessionStatus.CANCELLED:
        return RoomState.CLOSED
    span = window(room, session, template)
    if now >= span.closes_at:
        return RoomState.CLOSED
    if now >= span.opens_at or room.manual_state is RoomState.OPEN:
        return RoomState.OPEN
    return RoomState.SCHEDULED


def assigned_forum_ids(person: Person) -> set[int]:
    """Forums the person holds a seat in (waiting list excluded)."""
    return {
        a.forum_id
        for a in person.assignments
        if a.status is AssignmentStatus.ASSIGNED and a.forum_id is not None
    }


def may_enter(person: Person, room: Room) -> bool:
    """Organisers enter any room, everyone the plenary, others only their own forum."""
    if person.role is Role.ORGANISER or room.kind is RoomKind.PLENARY:
        return True
    return room.forum_id in assigned_forum_ids(person)


def template_for(person: Person, room: Room, templates: Mapping[str, RoomTemplate]) -> RoomTemplate:
    """The room's template; the in-person room's device joins with its own."""
    if person.role is Role.ROOM_SYSTEM and room.kind is RoomKind.FORUM:
        return templates[ROOM_SYSTEM_TEMPLATE]
    return templates[room.template]


def is_moderator(person: Person, room: Room, template: RoomTemplate) -> bool:
    """Moderator when the template names the role; forum staff only in their own forum."""
    if person.role not in template.moderator_roles:
        return False
    return person.role is Role.ORGANISER or room.kind is RoomKind.PLENARY or may_enter(person, room)


async def find_by_name(session: AsyncSession, name: str) -> Room | None:
    """A room by its Jitsi name (lowercase), with its session and forum."""
    statement = (
        select(Room)
        .where(Room.name == name.lower())
        .options(selectinload(Room.session), selectinload(Room.forum))
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_by_name(session: AsyncSession, name: str) -> Room:
    room = await find_by_name(session, name)
    if room is None:
        raise NotFoundError(f"Raum {name!r} gibt es nicht.")
    return room


async def find_by_ref(session: AsyncSession, ref: str) -> Room | None:
    """A room by its numeric id or its Jitsi name; None when there is none."""
    if ref.isdecimal() and len(ref) < 19:
        options = [selectinload(Room.session), selectinload(Room.forum)]
        found = await session.get(Room, int(ref), options=options)
        if found is not None:
            return found
    return await find_by_name(session, ref)


async def get_by_ref(session: AsyncSession, ref: str) -> Room:
    """A room by its numeric id or its Jitsi name (staff API paths accept either)."""
    room = None
    if ref.isdecimal():
        options = [selectinload(Room.session), selectinload(Room.forum)]
        room = await session.get(Room, int(ref), options=options)
    return room or await get_by_name(session, ref)


async def mark_ended(session: AsyncSession, room: Room) -> None:
    """A moderator ended the room: it stays ended whatever the timeline says."""
    room.manual_state = RoomState.ENDED
    await session.flush()
