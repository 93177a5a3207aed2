"""A reminder is a row with a due time; the scheduler claims due rows and queues the mail."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum


class ReminderKind(StrEnum):
    BEFORE_SESSION = "before_session"  # at each configured offset before a session
    RSVP_NEEDED = "rsvp_needed"  # "please answer"
    CHOOSE_FORUM = "choose_forum"  # "please choose a forum"
    STARTING_NOW = "starting_now"  # at the start, with the join link, online people only
    THANK_YOU = "thank_you"  # after the conference, with the results link
    NO_SHOW = "no_show"  # accepted but did not attend


class ReminderState(StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"  # handed to the outbox
    SKIPPED = "skipped"  # due but useless (grace passed) or no longer applicable
    CANCELLED = "cancelled"  # withdrawn before it was due (declined, moved, removed)


class Reminder(Base):
    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    conference_id: Mapped[int] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind, "reminder_kind"))
    offset: Mapped[str | None] = mapped_column(String(20))  # ISO 8601 duration, e.g. P1D
    # kind:person:session:offset: never two rows for the same reminder.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    due_at: Mapped[datetime]
    state: Mapped[ReminderState] = mapped_column(
        str_enum(ReminderState, "reminder_state"), default=ReminderState.PLANNED
    )
    handled_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(200), default="")  # why skipped or cancelled
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_reminders_due", "state", "due_at"),)
