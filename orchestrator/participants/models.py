"""People, their ranked forum choices and their forum assignments."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Result, String, Text, UniqueConstraint, event
from sqlalchemy.orm import (
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.attributes import get_history

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum
from orchestrator.participants.search_keys import search_key

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
    # Folded name, email and organisation for the name search (search_keys.py); kept
    # current by the hooks below whenever one of them changes, erasure included.
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")
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

    __table_args__ = (
        UniqueConstraint("conference_id", "email"),
        # The organiser's list: a conference's people by name, a page at a time.
        Index("ix_people_list_order", "conference_id", "last_name", "first_name", "email"),
    )

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("id", uuid.uuid4())
        kwargs.setdefault("token", new_personal_token())
        super().__init__(**kwargs)

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


SEARCHED_FIELDS = ("first_name", "last_name", "email", "organisation")


def _key_of(person: Person) -> str:
    return search_key(person.first_name, person.last_name, person.email, person.organisation)


@event.listens_for(Person, "before_insert")
def _key_on_insert(_mapper: Mapper[Person], _connection: object, person: Person) -> None:
    person.search_key = _key_of(person)


@event.listens_for(Person, "before_update")
def _key_on_update(_mapper: Mapper[Person], _connection: object, person: Person) -> None:
    if any(get_history(person, name).has_changes() for name in SEARCHED_FIELDS):
        person.search_key = _key_of(person)


@event.listens_for(Session, "do_orm_execute")
def _key_on_bulk(state: ORMExecuteState) -> Result[Any] | None:
    """Bulk INSERT/UPDATE of people (lists of rows) bypass the mapper hooks: key them here.

    Statements that set a searched field in `.values()` are refused: the other fields of
    the rows they hit are unknown here, and a stale key would keep an erased name findable.
    """
    if not (state.is_insert or state.is_update):
        return None
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ is not Person:
        return None
    values = getattr(state.statement, "_values", None) or {}
    if any(getattr(column, "key", column) in SEARCHED_FIELDS for column in values):
        raise ValueError("Change people's names on the objects or as a list of rows.")
    rows = state.parameters
    if not isinstance(rows, list):
        return None
    extra: list[dict[str, Any]] = []
    for row in rows:
        if not any(name in row for name in SEARCHED_FIELDS):
            extra.append({})
        elif state.is_update and not all(name in row for name in SEARCHED_FIELDS):
            raise ValueError("A bulk update of people must set all four searched fields.")
        else:
            extra.append({"search_key": search_key(*(row.get(n) for n in SEARCHED_FIELDS))})
    return state.invoke_statement(params=extra) if any(extra) else None


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
