"""What a person changes on their own page: RSVP, forum, consent, language (flush only).

A forum change goes through `assignment.set_override` (the per-conference lock and the seat
check) and is then marked SELF_SERVICE, which the balancer keeps. It is open to participants
(moderators, referents and room systems belong to the forum they were put in) until the
round begins. The caller queues calendar changes and re-plans reminders (followups.after_change).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import (
    Conference,
    ConferenceSession,
    Forum,
    SessionKind,
    SessionStatus,
)
from orchestrator.conferences.repository import CONFERENCE_GRAPH, forum_fill
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.invitations.desired import desired_events
from orchestrator.invitations.ics import CalendarEvent
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.participants import repository
from orchestrator.participants.assignment import set_override
from orchestrator.participants.forum_board import waiting_positions
from orchestrator.participants.models import (
    Assignment,
    AssignmentSource,
    AssignmentStatus,
    Language,
    Person,
    Role,
    Rsvp,
)

log = logging.getLogger(__name__)

ANSWERS = (Rsvp.ACCEPTED, Rsvp.TENTATIVE, Rsvp.DECLINED)


class Refusal(StrEnum):
    """Why a forum change was refused (also the page's status key)."""

    FULL = "forum_full"
    CLOSED = "forum_closed"
    NOT_ALLOWED = "forum_not_allowed"
    UNKNOWN = "forum_unknown"


class ForumChangeRefused(ConflictError):  # noqa: N818 (a refusal the page explains)
    """A self-service forum change that may not happen; `reason` says why."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message, details={"reason": reason.value})
        self.reason = reason


@dataclass(frozen=True)
class Option:
    """A forum of a round, with its free seats."""

    key: str
    title: str
    room: str
    free: int
    capacity: int
    current: bool


@dataclass(frozen=True)
class Offer:
    """A breakout round: the person's seat in it and whether (and where) they may move."""

    title: str
    forum: str  # the forum the person sits in, or ""
    room: str
    waitlisted: bool
    change: str  # "open", "waiting" (on the waiting list, no forum has a free seat),
    # "started" (the round has begun) or "fixed" (not a participant)
    options: list[Option]
    position: int | None = None  # on the waiting list: 1 is next in line


async def load(session: AsyncSession, person_id: uuid.UUID) -> tuple[Person, Conference]:
    """The person (choices, assignments) and their conference (sessions, forums, rooms)."""
    conference_id = await session.scalar(select(Person.conference_id).where(Person.id == person_id))
    if conference_id is None:
        raise NotFoundError("Person nicht gefunden.")
    conference = await session.get(Conference, conference_id, options=CONFERENCE_GRAPH)
    if conference is None:
        raise NotFoundError("Konferenz nicht gefunden.")
    return await repository.get(session, conference_id, person_id), conference


async def free_seats(session: AsyncSession, conference: Conference) -> dict[int, int]:
    """Free seats per forum id (never below zero, even when an organiser overbooked)."""
    fill = await forum_fill(session, conference.id)
    return {forum.id: max(forum.capacity - fill.get(forum.id, 0), 0) for forum in conference.forums}


async def waiting_places(
    session: AsyncSession, conference: Conference, person: Person
) -> dict[int, int]:
    """The person's position on each waiting list they are on, by round id."""
    positions = await waiting_positions(session, conference)
    return {round_id: n for (person_id, round_id), n in positions.items() if person_id == person.id}


def seat(person: Person, round_id: int) -> Assignment | None:
    """The person's row in a breakout round (a forum or the waiting list), if any."""
    return next((row for row in person.assignments if row.session_id == round_id), None)


def current_forum_id(person: Person, round_id: int) -> int | None:
    """The forum the person holds a seat in for this round, or None."""
    row = seat(person, round_id)
    held = row is not None and row.status is AssignmentStatus.ASSIGNED
    return row.forum_id if held and row is not None else None


def may_change(person: Person, forum_round: ConferenceSession, now: datetime) -> bool:
    """Participants choose their forum themselves until the round begins."""
    return person.role is Role.PARTICIPANT and now < forum_round.starts_at


def _change(person: Person, forum_round: ConferenceSession, now: datetime) -> str:
    if may_change(person, forum_round, now):
        return "open"
    return "fixed" if person.role is not Role.PARTICIPANT else "started"


def _offer(
    conference: Conference,
    person: Person,
    item: ConferenceSession,
    free: dict[int, int],
    now: datetime,
    positions: dict[int, int],
) -> Offer:
    mine = current_forum_id(person, item.id)
    forums = [forum for forum in conference.forums if forum.session_id == item.id]
    options = [
        Option(f.key, f.title, f.in_person_room, free.get(f.id, 0), f.capacity, f.id == mine)
        for f in forums
    ]
    held = next((forum for forum in forums if forum.id == mine), None)
    waitlisted = seat(person, item.id) is not None and held is None
    title, room = (held.title, held.in_person_room) if held else ("", "")
    change = _change(person, item, now)
    if change == "open" and waitlisted and not any(option.free > 0 for option in options):
        change = "waiting"  # nothing to change to: no button, the mail comes when a seat does
    position = positions.get(item.id) if waitlisted else None
    return Offer(item.title, title, room, waitlisted, change, options, position)


def forum_offers(
    conference: Conference,
    person: Person,
    free: dict[int, int],
    now: datetime,
    positions: dict[int, int] | None = None,
) -> list[Offer]:
    """Each breakout round not cancelled: the person's forum and the forums on offer;
    `positions`: the person's place on each round's waiting list (see `waiting_places`)."""
    return [
        _offer(conference, person, item, free, now, positions or {})
        for item in conference.sessions
        if item.kind is SessionKind.BREAKOUT_ROUND and item.status is SessionStatus.SCHEDULED
    ]


def _forum(conference: Conference, key: str) -> tuple[Forum, ConferenceSession]:
    forum = next((forum for forum in conference.forums if forum.key == key), None)
    rounds = {item.id: item for item in conference.sessions}
    forum_round = rounds.get(forum.session_id) if forum and forum.session_id else None
    if forum is None or forum_round is None or forum_round.status is SessionStatus.CANCELLED:
        raise ForumChangeRefused(Refusal.UNKNOWN, f"Forum {key[:40]!r} gibt es nicht.")
    return forum, forum_round


async def change_forum(
    session: AsyncSession, conference: Conference, person: Person, forum_key: str, now: datetime
) -> Assignment | None:
    """Move the person into a forum with a free seat; None when they already sit there."""
    forum, forum_round = _forum(conference, forum_key)
    if not may_change(person, forum_round, now):
        reason = Refusal.NOT_ALLOWED if person.role is not Role.PARTICIPANT else Refusal.CLOSED
        raise ForumChangeRefused(reason, "Das Forum kann hier nicht gewechselt werden.")
    if current_forum_id(person, forum_round.id) == forum.id:
        return None
    try:
        row = await set_override(
            session, conference, person.id, forum.key, source=AssignmentSource.SELF_SERVICE
        )
    except ConflictError as error:  # no free seat (checked under the conference lock)
        raise ForumChangeRefused(Refusal.FULL, error.message) from error
    log.info("participants.forum_self_changed", extra={"conference": conference.slug})
    return row


async def set_rsvp(session: AsyncSession, person: Person, answer: Rsvp, now: datetime) -> None:
    """Record the person's answer (accepted, tentative or declined) and when they gave it."""
    if answer not in ANSWERS:
        raise ValueError(f"not an answer: {answer!r}")
    person.rsvp, person.rsvp_at = answer, now
    await session.flush()
    log.info("participants.rsvp_set", extra={"rsvp": answer.value})


async def withdraw_consent(session: AsyncSession, person: Person, now: datetime) -> None:
    """Consent withdrawn now: no further reminders; data go with the retention period."""
    person.consent, person.consent_at = False, now
    await session.flush()
    log.info("participants.consent_withdrawn")


async def give_consent(session: AsyncSession, person: Person, now: datetime) -> None:
    """Consent given (again) now."""
    person.consent, person.consent_at = True, now
    await session.flush()
    log.info("participants.consent_given")


async def set_language(session: AsyncSession, person: Person, language: Language) -> None:
    """The language of the person's page and of every mail from now on."""
    person.language = language
    await session.flush()


async def calendar_events(
    session: AsyncSession, conference: Conference, person: Person, base_url: str, domain: str
) -> list[CalendarEvent]:
    """The person's events as last sent (same UID and SEQUENCE), or as they would be sent."""
    rows = await session.scalars(select(CalendarEntry).where(CalendarEntry.person_id == person.id))
    sent = {
        (row.session_id, row.forum_id): row for row in rows if row.status is EntryStatus.REQUESTED
    }
    events = []
    for wanted in desired_events(conference, person, base_url, domain):
        entry = sent.get(wanted.key)
        event = wanted.event
        if entry is not None:
            bump = 0 if entry.fingerprint == wanted.fingerprint else 1
            event = replace(event, uid=entry.uid, sequence=entry.sequence + bump)
        events.append(event)
    return events
