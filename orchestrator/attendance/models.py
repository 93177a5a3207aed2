"""Raw Jitsi events, presence intervals, check-ins and organisers' attendance overrides."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum


class AttendanceStatus(StrEnum):
    PRESENT = "present"
    PARTIAL = "partial"
    ABSENT = "absent"
    EXCUSED = "excused"


class JitsiEvent(Base):
    """An event_sync webhook exactly as received, stored before we answer (nothing lost)."""

    __tablename__ = "jitsi_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 of the canonical payload: event_sync's retries of one event collapse into one row.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    event_name: Mapped[str] = mapped_column(String(40))
    room_name: Mapped[str] = mapped_column(String(200))
    occupant_id: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed: Mapped[bool] = mapped_column(default=False, index=True)

    # The folder reads one occupant's events, and a room's created/destroyed events.
    __table_args__ = (
        Index("ix_jitsi_events_room_occupant", "room_name", "occupant_id"),
        Index("ix_jitsi_events_room_event", "room_name", "event_name"),
    )


class PresenceInterval(Base):
    """Someone was in a room from joined_at to left_at (open while left_at is None)."""

    __tablename__ = "presence_intervals"

    id: Mapped[int] = mapped_column(primary_key=True)
    conference_id: Mapped[int | None] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )
    room_name: Mapped[str] = mapped_column(String(200))
    # Our person when the JWT's context.user.id is one of ours; None for anonymous presence.
    person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    # context.user.id, or "jid:<occupant_jid>" when the occupant carried no id.
    occupant_key: Mapped[str] = mapped_column(String(250))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    # How the end is known: left, room_destroyed, room_end (closed at the room's end).
    closed_by: Mapped[str | None] = mapped_column(String(20))
    via_breakout: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("ix_presence_room_occupant", "room_name", "occupant_key"),)


class CheckIn(Base):
    """In-person arrival at a session (QR code or name search by staff)."""

    __tablename__ = "check_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    arrived_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    method: Mapped[str] = mapped_column(String(20), default="search")  # qr | search

    __table_args__ = (Index("uq_check_ins_person_session", "person_id", "session_id", unique=True),)


class AttendanceOverride(Base):
    """An organiser's decision on a status, with the reason; every one is kept (audit)."""

    __tablename__ = "attendance_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[AttendanceStatus] = mapped_column(
        str_enum(AttendanceStatus, "attendance_status")
    )
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckInUndo(Base):
    """A check-in taken back by staff (scanned by mistake): what it was, who, when and why."""

    __tablename__ = "check_in_undos"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    arrived_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    method: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    undone_by: Mapped[str] = mapped_column(String(200), default="")
    undone_at: Mapped[datetime] = mapped_column(default=utcnow)
