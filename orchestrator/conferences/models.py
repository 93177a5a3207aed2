"""Conference, its sessions (plenary, breakout round) and its forums."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum

if TYPE_CHECKING:
    from orchestrator.participants.models import Person
    from orchestrator.rooms.models import Room


class ConferenceMode(StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"
    HYBRID = "hybrid"


class ConferenceStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RUNNING = "running"
    FINISHED = "finished"
    ARCHIVED = "archived"


class SessionKind(StrEnum):
    PLENARY = "plenary"
    BREAKOUT_ROUND = "breakout_round"


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Conference(Base):
    __tablename__ = "conferences"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    lead_theme: Mapped[str] = mapped_column(String(300), default="")
    organiser: Mapped[str] = mapped_column(String(300), default="")
    # The name as a German sentence needs it, with its article in the nominative: "das
    # Kommunale Integrationszentrum Kreis Heinsberg" ("Kommunales ..." alone is a heading).
    organiser_with_article: Mapped[str] = mapped_column(String(300), default="", server_default="")
    organiser_email: Mapped[str] = mapped_column(String(254), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Berlin")
    venue: Mapped[str] = mapped_column(String(500), default="")
    mode: Mapped[ConferenceMode] = mapped_column(
        str_enum(ConferenceMode, "conference_mode"), default=ConferenceMode.HYBRID
    )
    status: Mapped[ConferenceStatus] = mapped_column(
        str_enum(ConferenceStatus, "conference_status"), default=ConferenceStatus.DRAFT
    )
    retention_days: Mapped[int] = mapped_column(default=365)
    # Attendance rules (SPEC §4.7): present when video + check-in cover this share of a
    # session; rejoins within the gap merge into one stay.
    present_ratio: Mapped[float] = mapped_column(default=0.75)
    rejoin_gap_seconds: Mapped[int] = mapped_column(default=120)
    # ISO 8601 durations before each session, e.g. ["P7D", "P1D", "PT15M"] (SPEC §4.6).
    reminder_offsets: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sessions: Mapped[list[ConferenceSession]] = relationship(
        back_populates="conference",
        cascade="all, delete-orphan",
        order_by="ConferenceSession.starts_at",
    )
    forums: Mapped[list[Forum]] = relationship(
        back_populates="conference", cascade="all, delete-orphan", order_by="Forum.position"
    )
    rooms: Mapped[list[Room]] = relationship(
        back_populates="conference", cascade="all, delete-orphan", passive_deletes=True
    )
    people: Mapped[list[Person]] = relationship(
        back_populates="conference", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (CheckConstraint("retention_days > 0", name="retention_positive"),)


class ConferenceSession(Base):
    """A slot of the programme: a plenary or a round in which the forums run in parallel."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    conference_id: Mapped[int] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[SessionKind] = mapped_column(str_enum(SessionKind, "session_kind"))
    title: Mapped[str] = mapped_column(String(300))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[SessionStatus] = mapped_column(
        str_enum(SessionStatus, "session_status"), default=SessionStatus.SCHEDULED
    )
    # Raised on every change of time or place so calendar updates carry SEQUENCE+1.
    sequence: Mapped[int] = mapped_column(default=0)

    conference: Mapped[Conference] = relationship(back_populates="sessions")
    forums: Mapped[list[Forum]] = relationship(back_populates="session")
    # A plenary's own room, or the forum rooms of a breakout round.
    rooms: Mapped[list[Room]] = relationship(back_populates="session")

    __table_args__ = (
        UniqueConstraint("conference_id", "key"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )


class Forum(Base):
    """A topical group with its moderators, speakers and its own video room."""

    __tablename__ = "forums"

    id: Mapped[int] = mapped_column(primary_key=True)
    conference_id: Mapped[int] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), index=True
    )
    key: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int]
    in_person_room: Mapped[str] = mapped_column(String(200), default="")
    room_template: Mapped[str] = mapped_column(String(40), default="forum")
    invited_experts: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(default=0)

    conference: Mapped[Conference] = relationship(back_populates="forums")
    session: Mapped[ConferenceSession | None] = relationship(back_populates="forums")
    room: Mapped[Room | None] = relationship(back_populates="forum", cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("conference_id", "key"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
    )
