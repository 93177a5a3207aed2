"""Erasing a person (DSGVO Art. 17): every trace across the domains, in one transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.retention import erase_person
from orchestrator.conferences.models import Conference
from orchestrator.mail.models import OutboxMessage
from orchestrator.participants import repository


async def erase(session: AsyncSession, conference: Conference, person_id: uuid.UUID) -> None:
    """Remove the person, their presence and raw events, and every mail addressed to them.

    Choices, seats, calendar entries, reminders and join clicks go with the person row
    (ON DELETE CASCADE); mail rows keep the address and the rendered text, so they are
    deleted explicitly, sent or not.
    """
    person = await repository.get(session, conference.id, person_id)
    await session.execute(delete(OutboxMessage).where(OutboxMessage.person_id == person.id))
    await erase_person(session, person)
    await session.flush()
