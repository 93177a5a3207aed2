"""One person's mail and calendar as the organiser sees them, and sending the invitation again.

The history reads the outbox (kind, subject, state, last error, time; never the body) and
the calendar entries (session, sequence, state). A resend renders the invitation anew,
with every event the person's calendar should hold, and queues it through the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, ConferenceSession, Forum
from orchestrator.errors import InvalidInputError
from orchestrator.invitations.desired import Run
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.invitations.service import (
    INVITATION,
    _load,
    _mails,
    _Pending,
    _Scope,
    _store,
)
from orchestrator.invitations.service import (
    _apply as _record,
)
from orchestrator.invitations.service import (
    _compare as _changes_of,
)
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants import repository

HISTORY_LIMIT = 100


@dataclass(frozen=True)
class MailLine:
    kind: str
    subject: str
    state: OutboxState
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int


@dataclass(frozen=True)
class CalendarLine:
    session: str
    forum: str
    starts_at: datetime
    sequence: int
    status: EntryStatus
    sent_at: datetime


async def mail_history(session: AsyncSession, person_id: uuid.UUID) -> list[MailLine]:
    """The person's mails, newest first (at most HISTORY_LIMIT)."""
    statement = (
        select(
            OutboxMessage.kind,
            OutboxMessage.subject,
            OutboxMessage.state,
            OutboxMessage.last_error,
            OutboxMessage.created_at,
            OutboxMessage.sent_at,
            OutboxMessage.attempts,
        )
        .where(OutboxMessage.person_id == person_id)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return [MailLine(*row) for row in await session.execute(statement)]


async def calendar_state(session: AsyncSession, person_id: uuid.UUID) -> list[CalendarLine]:
    """The events in the person's calendar as last sent, in programme order."""
    statement = (
        select(
            ConferenceSession.title,
            Forum.title,
            ConferenceSession.starts_at,
            CalendarEntry.sequence,
            CalendarEntry.status,
            CalendarEntry.sent_at,
        )
        .join(ConferenceSession, ConferenceSession.id == CalendarEntry.session_id)
        .outerjoin(Forum, Forum.id == CalendarEntry.forum_id)
        .where(CalendarEntry.person_id == person_id)
        .order_by(ConferenceSession.starts_at, CalendarEntry.id)
    )
    return [
        CalendarLine(title, forum or "", starts, sequence, status, sent)
        for title, forum, starts, sequence, status, sent in await session.execute(statement)
    ]


async def resend_invitation(
    session: AsyncSession,
    conference: Conference,
    person_id: uuid.UUID,
    *,
    base_url: str,
    message_domain: str,
    sender: str,
    now: datetime,
) -> int:
    """Queue the person's invitation (again): their personal link and every event their
    calendar should hold, under the UIDs already sent. Returns the mails queued (0 or 1;
    a second click in the same second is the same mail)."""
    person = await repository.get(session, conference.id, person_id)
    first = person.invited_at is None
    run = Run(conference, base_url, message_domain, sender, now)
    scope = _Scope(person_ids=[person.id])
    people, seats, entries = await _load(session, conference.id, scope, invited=not first)
    pending = _Pending()
    for found in people:
        changes = _changes_of(
            run, found, seats.get(found.id, {}), entries.get(found.id, {}), invite=True
        )
        try:
            mails = _mails(run, found, changes, invite=True)
        except ValueError as error:  # an address no mail or calendar can carry
            raise InvalidInputError(f"Keine E-Mail an diese Adresse möglich: {error}") from None
        if not first:  # the first invitation keeps its key: the run for everyone skips it
            again = f"{INVITATION}:{found.id}:again:{now:%Y%m%dT%H%M%S}"
            mails = [replace(mail, dedup_key=again) for mail in mails]
        pending.mails += mails
        pending.entries += _record(found, changes, now)
        if first:
            pending.invited.append(found.id)
    return await _store(session, pending, run)
