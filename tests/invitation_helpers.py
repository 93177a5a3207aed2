"""Shared helpers for the invitation tests: four invited people, outbox rows, MIME parts."""

from __future__ import annotations

import email
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any, cast

import icalendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference
from orchestrator.invitations.models import CalendarEntry
from orchestrator.invitations.service import Report, queue_invitations
from orchestrator.mail.models import OutboxMessage
from orchestrator.mail.rendering import KINDS
from orchestrator.participants import service as people
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.models import AttendanceMode, Language, Person
from orchestrator.participants.schemas import PersonIn
from tests.conftest import load_sample

BASE = "http://orchestrator.test"
DOMAIN = "orchestrator.test"
SENDER = "Konferenz-Orchestrator <noreply@orchestrator.test>"
NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
Step = Callable[..., Awaitable[Report]]


async def add_person(
    session: AsyncSession, conference: Conference, local: str, **fields: Any
) -> Person:
    data = PersonIn(email=f"{local}@example.org", **fields)
    return await people.create(session, conference, data)


PEOPLE = {  # local part of the address: language, attendance mode, forum choices
    "anna": (Language.DE, AttendanceMode.IN_PERSON, ["sprache"]),
    "ben": (Language.EN, AttendanceMode.ONLINE, ["werte"]),
    "carla": (Language.DE, AttendanceMode.UNDECIDED, ["bildung"]),
    "dora": (Language.EN, AttendanceMode.UNDECIDED, []),  # no forum: plenaries only
}


async def conference_with_people(session: AsyncSession, *, invite: bool = False) -> Conference:
    """The sample conference with four people, balanced (and invited); committed."""
    conference = await load_sample(session)
    for local, (language, mode, choices) in PEOPLE.items():
        await add_person(
            session,
            conference,
            local,
            first_name=local.title(),
            last_name="Beispiel",
            language=language,
            attendance_mode=mode,
            forum_choices=choices,
        )
    await run_assignment(session, conference)
    await session.commit()
    if invite:
        await queue_mails(session, conference)
    return conference


async def queue_mails(
    session: AsyncSession, conference: Conference, step: Step = queue_invitations
) -> Report:
    """Run queue_invitations (or sync_changes) as the CLI or API would, then commit."""
    report = await step(
        session, conference, base_url=BASE, message_domain=DOMAIN, sender=SENDER, now=NOW
    )
    await session.commit()
    return report


async def outbox_rows(session: AsyncSession, kind: str | None = None) -> list[OutboxMessage]:
    kinds = [kind] if kind else list(KINDS)
    statement = select(OutboxMessage).where(OutboxMessage.kind.in_(kinds))
    return list(await session.scalars(statement.order_by(OutboxMessage.id)))


async def person_by_email(session: AsyncSession, address: str) -> Person:
    return (await session.scalars(select(Person).where(Person.email == address))).one()


async def entries_of(session: AsyncSession, person: Person) -> list[CalendarEntry]:
    statement = select(CalendarEntry).where(CalendarEntry.person_id == person.id)
    return list(await session.scalars(statement.order_by(CalendarEntry.id)))


def parse_mail(row: OutboxMessage) -> EmailMessage:
    return email.message_from_bytes(row.body, policy=policy.default)


def mime_part(message: EmailMessage, content_type: str) -> EmailMessage:
    found = [part for part in message.walk() if part.get_content_type() == content_type]
    assert len(found) == 1, content_type
    return found[0]


def text_of(message: EmailMessage, subtype: str) -> str:
    return str(mime_part(message, f"text/{subtype}").get_content())


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(ics_of(message))


def ics_of(message: EmailMessage) -> bytes:
    return cast(bytes, mime_part(message, "text/calendar").get_payload(decode=True))


def events_of(message: EmailMessage) -> list[icalendar.Component]:
    return list(calendar_of(message).walk("VEVENT"))
