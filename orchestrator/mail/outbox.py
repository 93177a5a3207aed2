"""Putting rendered mail into the outbox: idempotent by dedup key, Message-ID fixed at once.

A mail that cannot go out at all (an address no message can carry) is stored too, at once
`failed` with its reason: it counts in every progress figure instead of vanishing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.db import utcnow
from orchestrator.mail.addresses import needs_smtputf8, wire_address
from orchestrator.mail.mime import header, serialise
from orchestrator.mail.models import OutboxMessage, OutboxState

_CHUNK = 500
_OUTBOX = cast(Table, OutboxMessage.__table__)


@dataclass(frozen=True)
class Outgoing:
    """One rendered mail to queue; `failure` instead of a message: it cannot be sent."""

    kind: str
    dedup_key: str
    recipient: str
    message: EmailMessage | None
    conference_id: int | None = None
    person_id: uuid.UUID | None = None
    failure: str = ""


def unsendable(
    kind: str,
    dedup_key: str,
    recipient: str,
    reason: str,
    conference_id: int | None = None,
    person_id: uuid.UUID | None = None,
) -> Outgoing:
    """A mail no message can be built for: it enters the outbox as failed, with `reason`."""
    return Outgoing(kind, dedup_key, recipient, None, conference_id, person_id, reason)


def finalise(message: EmailMessage, message_domain: str, now: datetime) -> str:
    """Give the message its stable Message-ID and Date; returns the Message-ID."""
    message_id = f"<{uuid.uuid4().hex}@{message_domain}>"
    del message["Message-ID"], message["Date"]
    message["Message-ID"] = message_id
    message["Date"] = header("Date", format_datetime(now))
    return message_id


async def existing_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Which of these dedup keys are already in the outbox."""
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = await session.execute(
            select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(chunk))
        )
        found.update(rows.scalars())
    return found


async def enqueue_many(
    session: AsyncSession,
    items: Iterable[Outgoing],
    *,
    message_domain: str,
    now: datetime | None = None,
) -> int:
    """Store each mail not queued before (by dedup key); returns how many were added."""
    items = list(items)
    now = now or utcnow()
    known = await existing_keys(session, [item.dedup_key for item in items])
    rows = []
    for item in items:
        if item.dedup_key in known:
            continue
        known.add(item.dedup_key)
        rows.append(_row(item, message_domain, now))
    if rows:  # a Core executemany: the ORM's per-object (or bulk) bookkeeping costs 10x here
        await session.execute(_OUTBOX.insert(), rows)
    return len(rows)


def _row(item: Outgoing, message_domain: str, now: datetime) -> dict[str, object]:
    """The outbox row: queued with its bytes, or failed at once with the reason why not."""
    row: dict[str, object] = {
        "kind": item.kind,
        "dedup_key": item.dedup_key,
        "conference_id": item.conference_id,
        "person_id": item.person_id,
        "next_attempt_at": now,
        "created_at": now,
    }
    failure, message = item.failure, item.message
    try:
        recipient = wire_address(item.recipient)
    except ValueError as error:
        recipient, failure = " ".join(item.recipient.split())[:254], failure or str(error)
    if failure or message is None:
        message_id = f"<{uuid.uuid4().hex}@{message_domain}>"
        subject = str(message["Subject"] or "") if message is not None else ""
        failure = (failure or "keine Nachricht / no message")[:2000]
        return row | {"recipient": recipient, "subject": subject, "message_id": message_id,
                      "body": b"", "state": OutboxState.FAILED, "last_error": failure}  # fmt: skip
    return row | {
        "recipient": recipient,
        "subject": str(message["Subject"] or ""),
        "message_id": finalise(message, message_domain, now),
        # A local part in UTF-8 needs SMTPUTF8, and then the headers go in UTF-8 (RFC 6532).
        "body": serialise(message, utf8=needs_smtputf8(recipient)),
        "state": OutboxState.QUEUED,
        "last_error": "",  # one executemany needs the same keys in every row
    }


async def counts_by_state(
    session: AsyncSession, conference_id: int | None = None, kind: str | None = None
) -> dict[str, int]:
    """How many messages are in each state (for progress bars and dashboards)."""
    statement = select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    if conference_id is not None:
        statement = statement.where(OutboxMessage.conference_id == conference_id)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    counts = {state.value: 0 for state in OutboxState}
    for state, count in (await session.execute(statement)).all():
        counts[state.value] = count
    return counts


async def failure_reasons(
    session: AsyncSession, conference_id: int | None = None, kind: str | None = None
) -> list[tuple[str, int]]:
    """Why messages failed: each reason with how many, most frequent first."""
    statement = (
        select(OutboxMessage.last_error, func.count())
        .where(OutboxMessage.state == OutboxState.FAILED)
        .group_by(OutboxMessage.last_error)
        .order_by(func.count().desc(), OutboxMessage.last_error)
    )
    if conference_id is not None:
        statement = statement.where(OutboxMessage.conference_id == conference_id)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    return [(reason or "", count) for reason, count in (await session.execute(statement)).all()]


@dataclass(frozen=True)
class OutboxRow:
    """One outbox message as the organiser's list shows it (no body)."""

    id: int
    recipient: str
    kind: str
    subject: str
    state: OutboxState
    attempts: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class OutboxPage:
    """A page of a conference's outbox and how many rows match in all."""

    rows: list[OutboxRow]
    total: int


async def page_of_outbox(
    session: AsyncSession,
    conference_id: int,
    *,
    state: OutboxState | None = None,
    offset: int = 0,
    limit: int = 50,
) -> OutboxPage:
    """A conference's messages (of one state, if given), newest first."""
    mine = [OutboxMessage.conference_id == conference_id]
    if state is not None:
        mine.append(OutboxMessage.state == state)
    total = (await session.execute(select(func.count()).where(*mine))).scalar_one()
    columns = select(
        OutboxMessage.id,
        OutboxMessage.recipient,
        OutboxMessage.kind,
        OutboxMessage.subject,
        OutboxMessage.state,
        OutboxMessage.attempts,
        OutboxMessage.last_error,
        OutboxMessage.created_at,
        OutboxMessage.sent_at,
    ).where(*mine)
    statement = columns.order_by(OutboxMessage.id.desc()).offset(offset).limit(limit)
    rows = [OutboxRow(*row) for row in (await session.execute(statement)).all()]
    return OutboxPage(rows, int(total))


async def requeue_failed(
    session: AsyncSession,
    conference_id: int,
    now: datetime,
    ids: Collection[int] | None = None,
) -> int:
    """Send a conference's failed messages (all, or these ids) again: queued, due now, with a
    fresh count of attempts. Rows of other conferences or in other states are left alone.
    Returns how many were requeued."""
    statement = (
        update(OutboxMessage)
        .where(
            OutboxMessage.conference_id == conference_id,
            OutboxMessage.state == OutboxState.FAILED,
        )
        .values(state=OutboxState.QUEUED, next_attempt_at=now, attempts=0, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    if ids is not None:
        statement = statement.where(OutboxMessage.id.in_(list(ids)))
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
