"""Cancelling a session, and bringing it back: the session stays, its calendar entries follow.

A session that anyone ever received in a calendar is cancelled, never deleted: deleting it
would delete its calendar entries (UID, SEQUENCE) with it, so nobody would get the CANCEL,
and a session that came back later would restart at SEQUENCE 0 under the same UID, which
calendars ignore. The CANCEL mails (SEQUENCE+1) and the end of its reminders follow from the
status through `followups.after_change`, which every caller runs in the same transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences import repository
from orchestrator.conferences.models import Conference, ConferenceSession, SessionStatus
from orchestrator.invitations.models import CalendarEntry

log = logging.getLogger(__name__)


async def ever_in_calendars(session: AsyncSession, item: ConferenceSession) -> bool:
    """Whether any calendar entry exists for the session (held now, or withdrawn before)."""
    statement = select(exists().where(CalendarEntry.session_id == item.id))
    return bool((await session.execute(statement)).scalar())


def cancel(item: ConferenceSession) -> bool:
    """Mark the session cancelled, one SEQUENCE up; False if it already was."""
    if item.status is SessionStatus.CANCELLED:
        return False
    item.status = SessionStatus.CANCELLED
    item.sequence += 1
    return True


def reinstate(item: ConferenceSession) -> bool:
    """Schedule a cancelled session again, one SEQUENCE up; False if it was not cancelled."""
    if item.status is SessionStatus.SCHEDULED:
        return False
    item.status = SessionStatus.SCHEDULED
    item.sequence += 1
    return True


async def cancel_session(
    session: AsyncSession, slug: str, key: str
) -> tuple[Conference, ConferenceSession]:
    """Cancel one session of an edition (idempotent); NotFoundError for an unknown one."""
    conference = await repository.get_by_slug(session, slug)
    item = repository.session_by_key(conference, key)
    if cancel(item):
        log.info("conferences.session_cancelled", extra={"conference": slug, "session": key})
    await session.flush()
    return conference, item
