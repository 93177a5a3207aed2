"""People, their ranked forum choices and their forum assignments."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum

if TYPE_CHECKING:
    from orchestrator.conferences.models import Conference, ConferenceSession, Forum


class Role(StrEnum):
    PARTICIPANT = "participant"
    MODERATOR = "moderator"
    REFERENT = "referent"
    ORGANISER = "organiser"
    ROOM_SYSTEM = "room_system"  # the video device of an in-person forum room


class AttendanceMode(StrEnum):
    ONLINE = "online"
    IN_PERSON = "in_person"
    UNDECIDED = "undecided"


class Language(StrEnum):
    DE = "de"
    EN = "en"


class Rsvp(StrEnum):
    NEEDS_ACTION = "needs_action"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"


class AssignmentStatus(StrEnum):
    ASSIGNED = "assigned"
    WAITLISTED = "waitlisted"


class AssignmentSource(StrEnum):
    BALANCER = "balancer"
    OVERRIDE = "override"  # set by an organiser; the balancer keeps it
    SELF_SERVICE = "self_service"  # chosen by the person; the balancer keeps it


PINNED_SOURCES = frozenset({AssignmentSource.OVERRIDE, AssignmentSource.SELF_SERVICE})


def new_personal_token() -> str:
    """256 random bits, URL-safe: the key to a person's page and join links."""
    return secrets.token_urlsafe(32)


class Person(Base):
    __tablename__ = "people"

    # A random id: it goes to Jitsi as the JWT's context.user.id and must not be enumerable.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    conference_id: Mapped[int] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(str_enum(Role, "person_role"), default=Role.PARTICIPANT)
    attendance_mode: Mapped[AttendanceMode] = mapped_column(
        str_enum(AttendanceMode, "attendance_mode"), default=AttendanceMode.UNDECIDED
    )
    language: Mapped[Language] = mapped_column(
        str_enum(Language, "person_language"), default=Language.DE
    )
    consent: Mapped[bool] = mapped_column(default=False)
    consent_at: Mapped[datetime | None]
    rsvp: Mapped[Rsvp] = mapped_column(str_enum(Rsvp, "person_rsvp"), default=Rsvp.NEEDS_ACTION)
    rsvp_at: Mapped[datetime | None]
    invited_at: Mapped[datetime | None]  # first invitation queued
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_personal_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    conference: Mapped[Conference] = relationship(back_populates="people")
    choices: Mapped[list[ForumChoice]] = relationship(
        back_populates="person",
        cascade="all, delete-orphan",
        order_by="ForumChoice.rank",
        passive_deletes=True,
    )
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("conference_id", "email"),)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("id", uuid.uuid4())
        kwargs.setdefault("token", new_personal_token())
        super().__init__(**kwargs)

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class ForumChoice(Base):
    """A person's ranked wish for a forum (rank 1 = first choice)."""

    __tablename__ = "forum_choices"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    forum_id: Mapped[int] = mapped_column(ForeignKey("forums.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int]

    person: Mapped[Person] = relationship(back_populates="choices")
    forum: Mapped[Forum] = relationship()

    __table_args__ = (
        UniqueConstraint("person_id", "rank"),
        UniqueConstraint("person_id", "forum_id"),
    )


class Assignment(Base):
    """Where a person sits in one breakout round: a forum, or the waiting list."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    forum_id: Mapped[int | None] = mapped_column(
        ForeignKey("forums.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[AssignmentStatus] = mapped_column(
        str_enum(AssignmentStatus, "assignment_status"), default=AssignmentStatus.ASSIGNED
    )
    source: Mapped[AssignmentSource] = mapped_column(
        str_enum(AssignmentSource, "assignment_source"), default=AssignmentSource.BALANCER
    )
    # Which of the person's choices this is (1, 2, ...), None when none of them.
    choice_rank: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship(back_populates="assignments")
    session: Mapped[ConferenceSession] = relationship()
    forum: Mapped[Forum | None] = relationship()

    __table_args__ = (UniqueConstraint("person_id", "session_id"),)
