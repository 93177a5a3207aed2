"""A Jitsi room of a conference: a forum's room or a plenary session's room."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum

if TYPE_CHECKING:
    from orchestrator.conferences.models import Conference, ConferenceSession, Forum


class RoomKind(StrEnum):
    PLENARY = "plenary"
    FORUM = "forum"


class RoomState(StrEnum):
    SCHEDULED = "scheduled"  # before its window opens
    OPEN = "open"  # people may enter
    CLOSED = "closed"  # after its window, or closed by a moderator
    ENDED = "ended"  # ended for everyone by a moderator; stays ended


def new_room_name(key: str) -> str:
    """A lowercase [a-z0-9-] Jitsi room name: a readable prefix and 80 random bits."""
    ascii_key = unicodedata.normalize("NFKD", key.lower().replace("ß", "ss"))
    prefix = re.sub(r"[^a-z0-9]+", "-", ascii_key.encode("ascii", "ignore").decode()).strip("-")
    return f"{prefix[:40].rstrip('-') or 'room'}-{secrets.token_hex(10)}"


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    conference_id: Mapped[int] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[RoomKind] = mapped_column(str_enum(RoomKind, "room_kind"))
    # The plenary session, or the breakout round the forum runs in: the room's window.
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), index=True
    )
    forum_id: Mapped[int | None] = mapped_column(
        ForeignKey("forums.id", ondelete="CASCADE"), unique=True
    )
    template: Mapped[str] = mapped_column(String(40))
    # A moderator's open/close/end beats the timeline; None follows the session window.
    manual_state: Mapped[RoomState | None] = mapped_column(str_enum(RoomState, "room_manual_state"))
    extended_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conference: Mapped[Conference] = relationship(back_populates="rooms")
    session: Mapped[ConferenceSession | None] = relationship(back_populates="rooms")
    forum: Mapped[Forum | None] = relationship(back_populates="room")

    def __init__(self, **kwargs: Any) -> None:
        hint = kwargs.pop("name_hint", "room")
        kwargs.setdefault("name", new_room_name(hint))
        super().__init__(**kwargs)


class JoinOutcome(StrEnum):
    REDIRECTED = "redirected"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    CLOSED = "closed"
    NOT_ALLOWED = "not_allowed"


class JoinClick(Base):
    """A click on a personal join link, and what came of it."""

    __tablename__ = "join_clicks"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    clicked_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[JoinOutcome] = mapped_column(str_enum(JoinOutcome, "join_outcome"))
    moderator: Mapped[bool] = mapped_column(default=False)


class RoomReservation(Base):
    """Prosody's request to create a room (mod_reservations), answered with our id."""

    __tablename__ = "room_reservations"

    # The id prosody stores and later sends back in GET/DELETE /conference/{id}.
    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    mail_owner: Mapped[str] = mapped_column(String(320), default="")
    start_time: Mapped[datetime]
    duration: Mapped[int]  # seconds prosody lets the room live
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    # At most one live reservation per room, even when two requests race.
    __table_args__ = (
        Index(
            "uq_room_reservations_active",
            "room_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )
