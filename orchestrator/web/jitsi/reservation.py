"""Jitsi's reservation API (mod_reservations): which rooms may exist, and when.

Prosody POSTs a form (`name`, `start_time`, `mail_owner`) before it creates a room, GETs a
conflicting reservation after a 409, and DELETEs it when the room is destroyed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from orchestrator.rooms import reservations
from orchestrator.rooms.reservations import Refusal, ReservationAnswer
from orchestrator.web.deps import AppClock, DbSession, RoomTemplates

router = APIRouter(prefix="/reservation", tags=["jitsi"])


class Message(BaseModel):
    message: str


class Conflict(BaseModel):
    conflict_id: str


_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "name or start_time missing"},
    403: {"model": Message, "description": "outside the room's window, closed or ended"},
    404: {"model": Message, "description": "not one of our rooms"},
    409: {"model": Conflict, "description": "already reserved; prosody GETs conflict_id"},
}


def _json(result: ReservationAnswer | Refusal, success: int = status.HTTP_200_OK) -> JSONResponse:
    if isinstance(result, Refusal):
        return JSONResponse(result.body(), status_code=result.status)
    return JSONResponse(result.body(), status_code=success)


@router.post(
    "/conference",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationAnswer,
    responses=_REFUSALS,
)
async def create_conference(
    session: DbSession,
    templates: RoomTemplates,
    clock: AppClock,
    name: Annotated[str, Form(description="room name (XMPP node)")] = "",
    start_time: Annotated[str, Form(description="yyyy-MM-dd'T'HH:mm:ss.SSSX")] = "",
    mail_owner: Annotated[str, Form(description="bare JID of the creator")] = "",
) -> JSONResponse:
    """Prosody asks to create a room: allowed for our rooms inside their window."""
    result = await reservations.reserve(session, name, start_time, mail_owner, templates, clock())
    return _json(result, status.HTTP_201_CREATED)


@router.get(
    "/conference/{reservation_id}",
    response_model=ReservationAnswer,
    responses={404: {"model": Message}},
)
async def get_conference(
    reservation_id: str, session: DbSession, templates: RoomTemplates
) -> JSONResponse:
    """The reservation a 409 pointed prosody to, shaped as the POST answer."""
    return _json(await reservations.get(session, reservation_id, templates))


@router.delete(
    "/conference/{reservation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Message}},
)
async def delete_conference(reservation_id: str, session: DbSession, clock: AppClock) -> Response:
    """Prosody destroyed the room: release its reservation (idempotent)."""
    refusal = await reservations.release(session, reservation_id, clock())
    if refusal is not None:
        return JSONResponse(refusal.body(), status_code=refusal.status)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
