"""A person's calendar entry for a session, as we last sent it (UID, SEQUENCE, status)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum


class EntryStatus(StrEnum):
    REQUESTED = "requested"  # the person's calendar holds it (METHOD:REQUEST sent)
    CANCELLED = "cancelled"  # withdrawn (METHOD:CANCEL sent)


class CalendarEntry(Base):
    """One VEVENT in one person's calendar: per person and session (and forum, in a round)."""

    __tablename__ = "calendar_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    forum_id: Mapped[int | None] = mapped_column(ForeignKey("forums.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(250), unique=True)
    sequence: Mapped[int] = mapped_column(default=0)
    status: Mapped[EntryStatus] = mapped_column(
        str_enum(EntryStatus, "calendar_entry_status"), default=EntryStatus.REQUESTED
    )
    # Hash of what was sent (time, place, title, links): a change means an update is due.
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
