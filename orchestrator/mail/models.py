"""The outbox: every mail is rendered and stored first, then sent with retries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum


class OutboxState(StrEnum):
    QUEUED = "queued"  # rendered, waiting for the sender
    SENDING = "sending"  # claimed by a sender (recovered if the sender dies)
    SENT = "sent"
    RETRY = "retry"  # temporary failure (4xx, connection); next_attempt_at says when
    FAILED = "failed"  # permanent failure (5xx) or retries exhausted; last_error says why


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    conference_id: Mapped[int | None] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    # Makes queueing idempotent: person + session + kind + sequence, for example.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the complete RFC 5322 message
    state: Mapped[OutboxState] = mapped_column(
        str_enum(OutboxState, "outbox_state"), default=OutboxState.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
