"""Telling people about their place on a waiting list, through the outbox.

"waitlisted": once per person and breakout round, when the person is on its waiting list.
"seat_offered": once per person and round, when someone who was told they wait now holds a
seat (the calendar REQUEST for the forum comes with the update mail `sync_changes` queues).
Both go only to people invited (nothing is sent to people never invited) who have not
declined. The outbox's dedup keys make each mail happen once, whatever path (balancer run,
organiser override, CLI, API, pages) calls `followups.after_change`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import (
    Conference,
    ConferenceSession,
    SessionKind,
    SessionStatus,
)
from orchestrator.mail.outbox import Outgoing, enqueue_many, existing_keys
from orchestrator.mail.rendering import build_message, mailbox, one_line, render
from orchestrator.participants.forum_board import waiting_positions
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    ForumChoice,
    Person,
    Rsvp,
)
from orchestrator.participants.service import personal_url

log = logging.getLogger(__name__)

WAITLISTED, SEAT_OFFERED = "waitlisted", "seat_offered"


def waitlisted_key(person_id: uuid.UUID, round_id: int) -> str:
    return f"{WAITLISTED}:{person_id}:{round_id}"


def seat_offered_key(person_id: uuid.UUID, round_id: int) -> str:
    return f"{SEAT_OFFERED}:{person_id}:{round_id}"


@dataclass(frozen=True)
class Notices:
    """Where links point and who sends."""

    base_url: str
    message_domain: str
    sender: str
    now: datetime


def _mail(
    notices: Notices, conference: Conference, person: Person, kind: str, extra: dict[str, Any]
) -> Outgoing:
    language, name = person.language.value, person.display_name
    context: dict[str, Any] = {
        "name": one_line(name),
        "conference": conference,
        "timezone": conference.timezone,
        "personal_url": personal_url(notices.base_url, person),
        "agenda": [],
        "cancelled": [],
        **extra,
    }
    message = build_message(
        render(kind, language, context),
        sender=notices.sender,
        recipient=mailbox(name, person.email),
        calendar=None,
        method=None,
        language=language,
        reply_to=conference.organiser_email or None,
    )
    key = (waitlisted_key if kind == WAITLISTED else seat_offered_key)(person.id, extra["round"].id)
    return Outgoing(kind, key, person.email, message, conference.id, person.id)


async def _rows(
    session: AsyncSession,
    conference: Conference,
    rounds: Collection[int],
    person_ids: Collection[uuid.UUID] | None,
) -> list[tuple[Assignment, Person]]:
    statement = (
        select(Assignment, Person)
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == conference.id, Person.invited_at.is_not(None))
        .where(Person.rsvp != Rsvp.DECLINED, Assignment.session_id.in_(list(rounds)))
        .order_by(Person.email, Assignment.session_id)
    )
    if person_ids is not None:
        statement = statement.where(Person.id.in_(list(person_ids)))
    return [(row, person) for row, person in await session.execute(statement)]


async def _choices(
    session: AsyncSession, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[int]]:
    statement = (
        select(ForumChoice.person_id, ForumChoice.forum_id)
        .where(ForumChoice.person_id.in_(person_ids))
        .order_by(ForumChoice.person_id, ForumChoice.rank)
    )
    chosen: dict[uuid.UUID, list[int]] = {}
    for person_id, forum_id in await session.execute(statement):
        chosen.setdefault(person_id, []).append(forum_id)
    return chosen


async def queue_waitlist_notices(
    session: AsyncSession,
    conference: Conference,
    notices: Notices,
    person_ids: Collection[uuid.UUID] | None = None,
) -> int:
    """Queue the waiting-list and seat mails now due (conference with its graph loaded)."""
    await session.flush()
    rounds: dict[int, ConferenceSession] = {
        item.id: item
        for item in conference.sessions
        if item.kind is SessionKind.BREAKOUT_ROUND and item.status is SessionStatus.SCHEDULED
    }
    rows = await _rows(session, conference, rounds, person_ids)
    if not rows:
        return 0
    keys = [waitlisted_key(p.id, r.session_id) for r, p in rows]
    keys += [seat_offered_key(p.id, r.session_id) for r, p in rows]
    known = await existing_keys(session, keys)
    waiting = [
        (row, person)
        for row, person in rows
        if row.status is AssignmentStatus.WAITLISTED
        and waitlisted_key(person.id, row.session_id) not in known
    ]
    seated = [
        (row, person)
        for row, person in rows
        if row.status is AssignmentStatus.ASSIGNED
        and waitlisted_key(person.id, row.session_id) in known
        and seat_offered_key(person.id, row.session_id) not in known
    ]
    positions = await waiting_positions(session, conference) if waiting else {}
    chosen = await _choices(session, [person.id for _, person in waiting])
    forums = {forum.id: forum for forum in conference.forums}
    zone = ZoneInfo(conference.timezone)
    mails = []
    for row, person in waiting:
        item = rounds[row.session_id]
        titles = [
            forums[f].title for f in chosen.get(person.id, []) if forums[f].session_id == item.id
        ]
        extra = {
            "round": item,
            "round_start": item.starts_at.astimezone(zone),
            "position": positions.get((person.id, item.id), 1),
            "choices": titles,
        }
        mails.append(_mail(notices, conference, person, WAITLISTED, extra))
    for row, person in seated:
        item, forum = rounds[row.session_id], forums.get(row.forum_id or 0)
        if forum is None:
            continue
        extra = {
            "round": item,
            "round_start": item.starts_at.astimezone(zone),
            "forum": forum.title,
            "room": forum.in_person_room,
        }
        mails.append(_mail(notices, conference, person, SEAT_OFFERED, extra))
    queued = await enqueue_many(
        session, mails, message_domain=notices.message_domain, now=notices.now
    )
    if queued:
        log.info(
            "invitations.waitlist_notices", extra={"conference": conference.slug, "queued": queued}
        )
    return queued
