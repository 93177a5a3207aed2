"""Rooms: live occupancy from prosody, and a moderator's "end the video room"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from orchestrator.jitsi.client import ProsodyClient
from orchestrator.rooms import service
from orchestrator.rooms.models import Room, RoomKind, RoomState
from orchestrator.web.deps import AppClock, DbSession, RoomTemplates

router = APIRouter(prefix="/rooms", tags=["rooms"])


class LivePerson(BaseModel):
    display_name: str
    email: str
    jid: str


class LiveRoom(BaseModel):
    room: str
    kind: RoomKind
    forum: str | None
    state: RoomState
    participants: int
    people: list[LivePerson]
    source: Literal["prosody"] = "prosody"


class EndedRoom(BaseModel):
    room: str
    state: RoomState
    was_running: bool


async def _prosody(request: Request) -> AsyncIterator[ProsodyClient]:
    """The app's shared client when one is wired (app.state.prosody), else one per request."""
    shared: ProsodyClient | None = getattr(request.app.state, "prosody", None)
    if shared is not None:
        yield shared
        return
    # Tokens use the wall clock, not the app clock: prosody checks exp/nbf with its own time.
    async with ProsodyClient(request.app.state.settings) as client:
        yield client


async def _room(room_id: str, session: DbSession) -> Room:
    return await service.get_by_ref(session, room_id)


Prosody = Annotated[ProsodyClient, Depends(_prosody)]
RoomByRef = Annotated[Room, Depends(_room)]


@router.get("/{room_id}/live", response_model=LiveRoom)
async def live(
    room: RoomByRef, prosody: Prosody, templates: RoomTemplates, clock: AppClock
) -> LiveRoom:
    """Who is in the room now, as prosody sees it (503 when prosody does not answer)."""
    size = await prosody.room_size(room.name)
    people = await prosody.room_participants(room.name)
    return LiveRoom(
        room=room.name,
        kind=room.kind,
        forum=room.forum.key if room.forum else None,
        state=service.state(room, room.session, templates[room.template], clock()),
        participants=size,
        people=[LivePerson(**person.model_dump()) for person in people],
    )


@router.post("/{room_id}/end", response_model=EndedRoom)
async def end(room: RoomByRef, prosody: Prosody, session: DbSession) -> EndedRoom:
    """End the video room for everyone and keep it ended (prosody first: 503 changes nothing)."""
    was_running = await prosody.end_meeting(room.name)
    await service.mark_ended(session, room)
    return EndedRoom(room=room.name, state=RoomState.ENDED, was_running=was_running)
