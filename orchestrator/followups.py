"""What must follow a change to the conference record: calendar updates, waiting-list
notices and reminder plans.

Every edge (API, CLI, participant page) that changes times, places, seats or people calls
`after_change` in the same transaction, so the outbox and the reminder rows are never
behind the record they derive from. Person-level changes pass `person_ids` so a single
edit does not re-process the whole conference.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences import repository
from orchestrator.conferences.models import Conference
from orchestrator.invitations.service import sync_changes
from orchestrator.invitations.waitlist import Notices, queue_waitlist_notices
from orchestrator.mail.rendering import message_domain
from orchestrator.scheduling.planning import replan


@dataclass(frozen=True)
class MailContext:
    """Where links point and who sends: from the settings, at the edge."""

    base_url: str
    sender: str


async def after_change(
    session: AsyncSession,
    conference: Conference,
    mail: MailContext,
    now: datetime,
    person_ids: Collection[uuid.UUID] | None = None,
) -> int:
    """Queue calendar updates/cancellations and waiting-list notices, re-plan reminders;
    returns mails queued."""
    await session.flush()
    conference = await repository.get_by_slug(session, conference.slug)  # fresh graph
    report = await sync_changes(
        session,
        conference,
        base_url=mail.base_url,
        message_domain=message_domain(mail.sender),
        sender=mail.sender,
        now=now,
        person_ids=person_ids,
    )
    notices = Notices(mail.base_url, message_domain(mail.sender), mail.sender, now)
    told = await queue_waitlist_notices(session, conference, notices, person_ids)
    await replan(session, conference, now, person_ids=person_ids)
    return report.queued + told
