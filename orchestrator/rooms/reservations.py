"""Prosody's reservation calls (jitsi-meet mod_reservations): may this room exist, how long.

Prosody asks before it creates a room and enforces the `duration` we answer: it expires the
room at `start_time + duration`, both read from our answer. We allow our own rooms inside
their window only, so that instant equals the window's close.

Reservation ids go out as JSON strings of digits: prosody on Lua 5.4 decodes a JSON number
as a float and would ask for `/conference/1.0` (JITSI.md, "Rooms"). A float-looking id that
an older deployment stored is still read (`7.0` is reservation 7).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import SessionStatus
from orchestrator.rooms.models import Room, RoomReservation, RoomState
from orchestrator.rooms.service import find_by_name, state, window
from orchestrator.rooms.templates import RoomTemplate

log = logging.getLogger(__name__)

MAIL_OWNER_MAX = 320  # room_reservations.mail_owner
ID_DIGITS_MAX = 18  # fits a BIGINT; longer "ids" cannot be ours

INCOMPLETE = (
    "Unvollständige Anfrage: name und start_time (ISO 8601) sind nötig. / "
    "Incomplete request: name and start_time (ISO 8601) are required."
)
UNKNOWN_ROOM = "Diesen Raum gibt es hier nicht. / This room is not known here."
NOT_YET_OPEN = "Der Raum ist noch nicht geöffnet. / The room is not open yet."
CLOSED = "Der Raum ist geschlossen. / The room is closed."
ENDED = "Der Raum wurde beendet. / The room has been ended."
CANCELLED = "Die Sitzung wurde abgesagt. / The session has been cancelled."
NO_TEMPLATE = "Die Raumvorlage des Raums fehlt. / The room's template is missing."
UNKNOWN_RESERVATION = "Diese Reservierung gibt es nicht. / No such reservation."
ALREADY_RESERVED = "Der Raum ist schon reserviert. / The room is already reserved."


class ReservationAnswer(BaseModel):
    """The conference prosody reads from a 200/201 to POST and from GET /conference/{id}."""

    model_config = ConfigDict(frozen=True)

    id: str  # digits as a JSON string, never a number (module docstring)
    name: str  # prosody requires the requested name, lowercased
    mail_owner: str
    start_time: str  # yyyy-MM-dd'T'HH:mm:ss.SSSX, as prosody sends it
    duration: int  # seconds from start_time until prosody ends the room
    max_occupants: int | None = None  # left out of the JSON when the template sets none
    lobby: bool

    def body(self) -> dict[str, object]:
        """The JSON object, without a max_occupants the template does not set."""
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class Refusal:
    """A non-success answer: prosody shows `message`; a 409 names the existing id instead."""

    status: int
    message: str
    conflict_id: str | None = None

    def body(self) -> dict[str, object]:
        """`{"conflict_id": id}` for a 409 (prosody then GETs it), else `{"message": ...}`."""
        if self.conflict_id is not None:
            return {"conflict_id": self.conflict_id}
        return {"message": self.message}


def format_time(moment: datetime) -> str:
    """Prosody's date format (Java yyyy-MM-dd'T'HH:mm:ss.SSSX): UTC, milliseconds, 'Z'."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime | None:
    """Prosody's start_time as an aware datetime (naive means UTC); None if not ISO 8601."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def reserve(
    session: AsyncSession,
    room_name: str,
    start_time: str,
    mail_owner: str,
    templates: Mapping[str, RoomTemplate],
    now: datetime,
) -> ReservationAnswer | Refusal:
    """Allow prosody to create one of our rooms inside its window; refuse anything else."""
    name = room_name.lower()
    start = parse_time(start_time)
    if not name or start is None:
        return _refused(name, Refusal(HTTPStatus.BAD_REQUEST, INCOMPLETE))
    room = await find_by_name(session, name)
    if room is None:
        return _refused(name, Refusal(HTTPStatus.NOT_FOUND, UNKNOWN_ROOM))
    template = templates.get(room.template)
    if template is None:
        return _refused(name, Refusal(HTTPStatus.INTERNAL_SERVER_ERROR, NO_TEMPLATE))
    reason = _closed_reason(room, template, now)
    if reason is not None:
        return _refused(name, Refusal(HTTPStatus.FORBIDDEN, reason))
    active = await _active_for(session, room)
    if active is not None:
        return _refused(name, Refusal(HTTPStatus.CONFLICT, ALREADY_RESERVED, str(active.id)))
    try:
        async with session.begin_nested():
            return await _grant(session, room, template, name, start, mail_owner)
    except IntegrityError:
        # Another request (a second prosody, a retry) reserved the room a moment ago.
        winner = await _active_for(session, room)
        conflict_id = str(winner.id) if winner is not None else None
        return _refused(name, Refusal(HTTPStatus.CONFLICT, ALREADY_RESERVED, conflict_id))


async def get(
    session: AsyncSession, reservation_id: str, templates: Mapping[str, RoomTemplate]
) -> ReservationAnswer | Refusal:
    """An unreleased reservation as POST answered it, its duration to the window's close now."""
    reservation = await _find(session, reservation_id)
    if reservation is None or reservation.deleted_at is not None:
        return Refusal(HTTPStatus.NOT_FOUND, UNKNOWN_RESERVATION)
    room = await find_by_name(session, reservation.name)
    if room is None:
        return Refusal(HTTPStatus.NOT_FOUND, UNKNOWN_RESERVATION)
    template = templates.get(room.template)
    duration = reservation.duration
    if template is not None and room.session is not None:
        duration = _seconds_until_close(room, template, reservation.start_time)
    return _answer(reservation, duration, template)


async def release(session: AsyncSession, reservation_id: str, now: datetime) -> Refusal | None:
    """Prosody destroyed the room: mark the reservation released (idempotent); None if done."""
    reservation = await _find(session, reservation_id)
    if reservation is None:
        return Refusal(HTTPStatus.NOT_FOUND, UNKNOWN_RESERVATION)
    if reservation.deleted_at is None:
        reservation.deleted_at = now
        await session.flush()
        log.info("rooms.reservation_released", extra={"reservation": reservation.id})
    return None


def _closed_reason(room: Room, template: RoomTemplate, now: datetime) -> str | None:
    current = state(room, room.session, template, now)
    if current is RoomState.OPEN:
        return None
    if current is RoomState.SCHEDULED:
        return NOT_YET_OPEN
    if current is RoomState.ENDED:
        return ENDED
    if room.session is not None and room.session.status is SessionStatus.CANCELLED:
        return CANCELLED
    return CLOSED


def _seconds_until_close(room: Room, template: RoomTemplate, start: datetime) -> int:
    assert room.session is not None  # callers checked: a room without session never opens
    closes_at = window(room, room.session, template).closes_at
    return max(0, int((closes_at - start).total_seconds()))


async def _grant(
    session: AsyncSession,
    room: Room,
    template: RoomTemplate,
    name: str,
    start: datetime,
    mail_owner: str,
) -> ReservationAnswer:
    duration = _seconds_until_close(room, template, start)
    reservation = RoomReservation(
        room_id=room.id,
        name=name,
        mail_owner=mail_owner[:MAIL_OWNER_MAX],
        start_time=start,
        duration=duration,
    )
    session.add(reservation)
    await session.flush()
    log.info(
        "rooms.reservation_granted",
        extra={"room": name, "reservation": reservation.id, "duration": duration},
    )
    return _answer(reservation, duration, template)


def _answer(
    reservation: RoomReservation, duration: int, template: RoomTemplate | None
) -> ReservationAnswer:
    return ReservationAnswer(
        id=str(reservation.id),
        name=reservation.name,
        mail_owner=reservation.mail_owner,
        start_time=format_time(reservation.start_time),
        duration=duration,
        max_occupants=template.max_occupants if template else None,
        lobby=template.lobby if template else False,
    )


def _refused(name: str, refusal: Refusal) -> Refusal:
    extra = {"room": name, "status": int(refusal.status), "reason": refusal.message}
    if refusal.conflict_id is not None:
        extra["conflict_id"] = refusal.conflict_id
    log.info("rooms.reservation_refused", extra=extra)
    return refusal


async def _active_for(session: AsyncSession, room: Room) -> RoomReservation | None:
    statement = (
        select(RoomReservation)
        .where(RoomReservation.room_id == room.id, RoomReservation.deleted_at.is_(None))
        .order_by(RoomReservation.id.desc())
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()


def parse_id(text: str) -> int | None:
    """Our reservation id from prosody's URL: digits, or digits and `.0` as Lua prints floats."""
    digits = text.removesuffix(".0")
    if not digits.isascii() or not digits.isdigit() or len(digits) > ID_DIGITS_MAX:
        return None
    return int(digits)


async def _find(session: AsyncSession, reservation_id: str) -> RoomReservation | None:
    number = parse_id(reservation_id)
    return None if number is None else await session.get(RoomReservation, number)
