"""The mails (through the outbox) that bring each calendar to what `desired` says it should hold.

Invitations go to every invitee whatever their consent flag says: the invitation is what asks
for consent, and its privacy line links to the page where a person can withdraw it. A
CalendarEntry records each VEVENT as last sent (UID, SEQUENCE, fingerprint); comparing the
entries with `desired_events` tells what to update or cancel. Entries and outbox rows are
written in the caller's transaction, so both commit or neither does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from email.utils import parseaddr
from typing import Literal, cast

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import Clock
from orchestrator.conferences import repository
from orchestrator.conferences.models import (
    Conference,
)
from orchestrator.db import transaction
from orchestrator.invitations.desired import (
    AgendaItem,
    Desired,
    Key,
    Run,
    Seats,
    attended,
    desired_event,
)
from orchestrator.invitations.ics import CalendarEvent, Party, build_calendar
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.mail.outbox import Outgoing, enqueue_many
from orchestrator.mail.rendering import build_message, mailbox, one_line, render
from orchestrator.participants.models import Assignment, AssignmentStatus, Person
from orchestrator.participants.service import personal_url

log = logging.getLogger(__name__)
_ENTRIES = cast(Table, CalendarEntry.__table__)

INVITATION, UPDATE, CANCELLATION = "invitation", "update", "cancellation"
MAIL_KINDS = (INVITATION, UPDATE, CANCELLATION)
_BATCH = 500  # mails handed to the outbox at a time: 5,000 messages never sit in memory


@dataclass
class Report:
    """What a run queued: mails, and the calendar events requested and cancelled."""

    people: int = 0  # people who got a mail
    queued: int = 0  # mails added to the outbox
    updated: int = 0  # events requested (new, changed or requested again)
    cancelled: int = 0  # events withdrawn with METHOD:CANCEL
    skipped: list[str] = field(default_factory=list)  # person ids no mail could be built for

    def add(self, other: Report) -> None:
        """Count another run's figures into this one."""
        self.people += other.people
        self.queued += other.queued
        self.updated += other.updated
        self.cancelled += other.cancelled
        self.skipped += other.skipped


def _mail(
    run: Run,
    person: Person,
    kind: str,
    events: Sequence[CalendarEvent],
    agenda: Sequence[AgendaItem],
    cancelled: Sequence[AgendaItem] = (),
) -> Outgoing:
    """Render one mail with its calendar (REQUEST, or CANCEL for a cancellation)."""
    conference, language, name = run.conference, person.language.value, person.display_name
    context = {"name": one_line(name), "conference": conference, "timezone": conference.timezone}
    context |= {"personal_url": personal_url(run.base_url, person), "agenda": agenda}
    context |= {"cancelled": cancelled}
    method: Literal["REQUEST", "CANCEL"] = "CANCEL" if kind == CANCELLATION else "REQUEST"
    sender_name, sender_address = parseaddr(run.sender)
    calendar = None
    if events:
        calendar = build_calendar(
            method,
            events,
            timezone=conference.timezone,
            organizer=Party(email=sender_address, name=conference.organiser or sender_name),
            attendee=Party(email=person.email, name=one_line(name)),
            stamp=run.now,
        )
    message = build_message(
        render(kind, language, context),
        sender=run.sender,
        recipient=mailbox(name, person.email),
        calendar=calendar,
        method=method if calendar else None,
        language=language,
        reply_to=conference.organiser_email or None,
    )
    marks = "|".join(f"{event.uid}#{event.sequence}" for event in events)
    digest = hashlib.sha256(marks.encode()).hexdigest()[:32]
    dedup = f"{kind}:{person.id}" if kind == INVITATION else f"{kind}:{person.id}:{digest}"
    return Outgoing(kind, dedup, person.email, message, conference.id, person.id)


def _is_current(entry: CalendarEntry | None, wanted: Desired) -> bool:
    if entry is None:
        return False
    return entry.status is EntryStatus.REQUESTED and entry.fingerprint == wanted.fingerprint


def _requested(wanted: Desired, entry: CalendarEntry | None) -> CalendarEvent:
    """The event as sent: an existing entry keeps its UID and goes up one SEQUENCE."""
    if entry is None:
        return wanted.event
    bump = 0 if _is_current(entry, wanted) else 1
    return replace(wanted.event, uid=entry.uid, sequence=entry.sequence + bump)


def _withdrawal(
    run: Run, person: Person, entry: CalendarEntry
) -> tuple[CalendarEvent, AgendaItem] | None:
    """An entry no longer wanted, as a cancelled event one SEQUENCE up."""
    item = run.sessions.get(entry.session_id)
    forum = run.forums.get(entry.forum_id) if entry.forum_id is not None else None
    if item is None or (entry.forum_id is not None and forum is None):
        return None  # its session or forum is gone (and the entry with it, by cascade)
    was = desired_event(run, person, item, forum)
    event = replace(was.event, uid=entry.uid, sequence=entry.sequence + 1, cancelled=True)
    return event, was.item


@dataclass
class _Changes:
    """One person's difference between calendar entries and desired events."""

    requests: list[tuple[Desired, CalendarEntry | None]]
    cancels: list[tuple[CalendarEntry, CalendarEvent, AgendaItem]]
    agenda: list[AgendaItem]  # the whole desired agenda, new or changed items marked


def _compare(
    run: Run, person: Person, seats: Seats, entries: dict[Key, CalendarEntry], *, invite: bool
) -> _Changes:
    """What to request (an invitation: everything) and what to cancel (never in one)."""
    desired = [desired_event(run, person, item, forum) for item, forum in attended(run, seats)]
    requests = [
        (d, entries.get(d.key)) for d in desired if invite or not _is_current(entries.get(d.key), d)
    ]
    changed = {wanted.key for wanted, _ in requests}
    wanted_keys = {d.key for d in desired}
    cancels = [
        (entry, *withdrawal)
        for key, entry in entries.items()
        if not invite and key not in wanted_keys and entry.status is EntryStatus.REQUESTED
        if (withdrawal := _withdrawal(run, person, entry)) is not None
    ]
    agenda = [replace(d.item, changed=d.key in changed) for d in desired]
    return _Changes(requests, cancels, agenda)


def _mails(run: Run, person: Person, changes: _Changes, *, invite: bool) -> list[Outgoing]:
    """An invitation; or a CANCEL for what is withdrawn and an update for what is new."""
    requested = [_requested(wanted, entry) for wanted, entry in changes.requests]
    if invite:
        agenda = [replace(item, changed=False) for item in changes.agenda]
        return [_mail(run, person, INVITATION, requested, agenda)]
    mails = []
    if changes.cancels:
        events = [event for _, event, _ in changes.cancels]
        withdrawn = [item for _, _, item in changes.cancels]
        agenda = [replace(item, changed=False) for item in changes.agenda]
        mails.append(_mail(run, person, CANCELLATION, events, agenda, withdrawn))
    if requested:
        mails.append(_mail(run, person, UPDATE, requested, changes.agenda))
    return mails


def _apply(person: Person, changes: _Changes, now: datetime) -> list[dict[str, object]]:
    """Record what the mails sent: cancelled entries, and requested ones (new or raised).

    Existing entries change in place; new ones come back as rows for one bulk INSERT.
    """
    for entry, event, _ in changes.cancels:
        entry.sequence, entry.status, entry.sent_at = event.sequence, EntryStatus.CANCELLED, now
    fresh: list[dict[str, object]] = []
    for wanted, existing in changes.requests:
        event = _requested(wanted, existing)
        if existing is None:
            fresh.append(
                {
                    "person_id": person.id,
                    "session_id": wanted.key[0],
                    "forum_id": wanted.key[1],
                    "uid": event.uid,
                    "sequence": event.sequence,
                    "status": EntryStatus.REQUESTED,
                    "fingerprint": wanted.fingerprint,
                    "sent_at": now,
                }
            )
            continue
        existing.sequence, existing.status = event.sequence, EntryStatus.REQUESTED
        existing.fingerprint, existing.sent_at = wanted.fingerprint, now
    return fresh


@dataclass
class _Pending:
    """What a run has rendered and not yet written: mails, new entries, newly invited."""

    mails: list[Outgoing] = field(default_factory=list)
    entries: list[dict[str, object]] = field(default_factory=list)
    invited: list[uuid.UUID] = field(default_factory=list)


async def _store(session: AsyncSession, pending: _Pending, run: Run) -> int:
    """Write a batch with one statement per table; returns how many mails were queued."""
    if pending.entries:
        # Core executemany: the ORM's bulk INSERT took ~15x as long for these rows.
        await session.execute(_ENTRIES.insert(), pending.entries)
    if pending.invited:
        mark = update(Person).where(Person.id.in_(pending.invited)).values(invited_at=run.now)
        await session.execute(mark.execution_options(synchronize_session="evaluate"))
    return await enqueue_many(session, pending.mails, message_domain=run.domain, now=run.now)


@dataclass(frozen=True)
class _Scope:
    """Whom a run looks at: at most `limit` people, by address after `after`; only
    `person_ids`, if given; only people invited before `invited_before`, if given."""

    limit: int | None = None
    after: str | None = None
    person_ids: Collection[uuid.UUID] | None = None
    invited_before: datetime | None = None


async def _load(
    session: AsyncSession, conference_id: int, scope: _Scope, *, invited: bool
) -> tuple[list[Person], dict[uuid.UUID, Seats], dict[uuid.UUID, dict[Key, CalendarEntry]]]:
    """The people of the scope (invited or not), their seats and calendar entries."""
    # Serialise runs per conference (PostgreSQL; SQLite serialises writers anyway).
    lock = select(Conference.id).where(Conference.id == conference_id).with_for_update()
    await session.execute(lock)
    sent = Person.invited_at.is_not(None) if invited else Person.invited_at.is_(None)
    mine: tuple[ColumnElement[bool], ...] = (Person.conference_id == conference_id, sent)
    if scope.person_ids is not None:
        mine = (*mine, Person.id.in_(list(scope.person_ids)))
    if scope.after is not None:
        mine = (*mine, Person.email > scope.after)
    if scope.invited_before is not None:
        mine = (*mine, Person.invited_at < scope.invited_before)
    query = select(Person).where(*mine).order_by(Person.email).limit(scope.limit)
    people = list(await session.scalars(query))
    if scope.limit is not None:
        mine = (*mine, Person.id.in_([person.id for person in people]))
    held = (
        select(Assignment.person_id, Assignment.session_id, Assignment.forum_id)
        .join(Person, Person.id == Assignment.person_id)
        .where(*mine, Assignment.status == AssignmentStatus.ASSIGNED)
    )
    seats: dict[uuid.UUID, Seats] = {}
    for person_id, round_id, forum_id in await session.execute(held):
        if forum_id is not None:
            seats.setdefault(person_id, {})[round_id] = forum_id
    rows = select(CalendarEntry).join(Person, Person.id == CalendarEntry.person_id).where(*mine)
    entries: dict[uuid.UUID, dict[Key, CalendarEntry]] = {}
    for entry in await session.scalars(rows):
        entries.setdefault(entry.person_id, {})[(entry.session_id, entry.forum_id)] = entry
    return people, seats, entries


async def _process(
    session: AsyncSession, run: Run, scope: _Scope, *, invite: bool
) -> tuple[Report, str | None]:
    """Invite everyone of the scope not yet invited (invite=True), or sync those invited.

    Also returns the address of the last person looked at (None if there was nobody):
    the next chunk starts after it, past anyone skipped in this one.
    """
    await session.flush()
    people, seats, entries = await _load(session, run.conference.id, scope, invited=not invite)
    report, pending = Report(), _Pending()
    for person in people:
        own = entries.get(person.id, {})
        changes = _compare(run, person, seats.get(person.id, {}), own, invite=invite)
        if not (invite or changes.requests or changes.cancels):
            continue
        try:
            pending.mails += _mails(run, person, changes, invite=invite)
        except ValueError as error:  # an address no mail or calendar can carry
            report.skipped.append(str(person.id))
            log.warning("invitations.skipped", extra={"person": str(person.id), "why": str(error)})
            continue
        pending.entries += _apply(person, changes, run.now)
        if person.invited_at is None:
            pending.invited.append(person.id)
        report.people += 1
        report.updated += len(changes.requests)
        report.cancelled += len(changes.cancels)
        if len(pending.mails) >= _BATCH:
            report.queued += await _store(session, pending, run)
            pending = _Pending()
    report.queued += await _store(session, pending, run)
    return report, people[-1].email if people else None


async def queue_invitations(
    session: AsyncSession,
    conference: Conference,
    *,
    base_url: str,
    message_domain: str,
    sender: str,
    now: datetime,
    limit: int | None = None,
) -> Report:
    """Queue one invitation (REQUEST with all their events) per person not yet invited.

    With `limit`, at most that many people: callers commit chunk by chunk so the sender
    can start on the first invitations while the rest are still being rendered.
    """
    run = Run(conference, base_url, message_domain, sender, now)
    report, _ = await _process(session, run, _Scope(limit=limit), invite=True)
    log.info("invitations.queued", extra={"conference": conference.slug, **asdict(report)})
    return report


async def sync_changes(
    session: AsyncSession,
    conference: Conference,
    *,
    base_url: str,
    message_domain: str,
    sender: str,
    now: datetime,
    person_ids: Collection[uuid.UUID] | None = None,
    invited_before: datetime | None = None,
) -> Report:
    """Bring invited people's calendars up to date: updates with SEQUENCE+1, and CANCELs.

    Only `person_ids`, if given; only people invited before `invited_before`, if given."""
    run = Run(conference, base_url, message_domain, sender, now)
    scope = _Scope(person_ids=person_ids, invited_before=invited_before)
    report, _ = await _process(session, run, scope, invite=False)
    log.info("invitations.synced", extra={"conference": conference.slug, **asdict(report)})
    return report


@dataclass(frozen=True)
class Context:
    """Where links point, who sends, and the clock: what every run of mails needs."""

    base_url: str
    domain: str
    sender: str
    clock: Clock


_CHUNK_TRIES = 10


async def _invite_chunk(
    sessions: async_sessionmaker[AsyncSession],
    slug: str,
    context: Context,
    chunk: int,
    after: str | None,
    person_ids: Collection[uuid.UUID] | None = None,
) -> tuple[Report, str | None]:
    """One chunk in its own transaction. A concurrent run that invited some of the same
    people first (possible on SQLite, which has no row lock to wait on) makes the insert
    fail on a unique key: roll back, wait a random moment (so two runs stop walking in
    step) and take the chunk again, now without them."""
    for attempt in range(1, _CHUNK_TRIES + 1):
        try:
            async with transaction(sessions) as session:
                conference = await repository.get_by_slug(session, slug)
                now = context.clock()
                run = Run(conference, context.base_url, context.domain, context.sender, now)
                scope = _Scope(limit=chunk, after=after, person_ids=person_ids)
                return await _process(session, run, scope, invite=True)
        except IntegrityError:
            if attempt == _CHUNK_TRIES:
                raise
            log.info("invitations.chunk_retried", extra={"conference": slug, "after": after})
            await asyncio.sleep(random.uniform(0.01, 0.1))  # noqa: S311 (jitter, not a secret)
    raise AssertionError("unreachable")


async def invite_everyone(
    sessions: async_sessionmaker[AsyncSession],
    slug: str,
    *,
    base_url: str,
    message_domain: str,
    sender: str,
    clock: Clock,
    chunk: int = 250,
    person_ids: Collection[uuid.UUID] | None = None,
) -> tuple[Report, Report]:
    """Queue invitations for everyone not yet invited (only `person_ids`, if given), `chunk`
    people per transaction; then updates and cancellations for changed calendars (of those
    people only, if given). Idempotent: a second run adds nothing.

    Each chunk commits on its own: a running sender delivers the first invitations while
    the rest are rendered; a crash keeps what was committed and the next run goes on from
    there; on SQLite no other writer (join clicks, Jitsi events) waits for the whole run;
    and an event loop serves other requests between chunks.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    invited, after, started = Report(), None, clock()
    context = Context(base_url, message_domain, sender, clock)
    while True:
        report, after = await _invite_chunk(sessions, slug, context, chunk, after, person_ids)
        invited.add(report)
        if after is None:
            break
    log.info("invitations.queued", extra={"conference": slug, **asdict(invited)})
    async with transaction(sessions) as session:
        conference = await repository.get_by_slug(session, slug)
        # Those just invited hold the current calendar; a change made meanwhile ran its own sync.
        changes = await sync_changes(
            session,
            conference,
            base_url=base_url,
            message_domain=message_domain,
            sender=sender,
            now=clock(),
            person_ids=person_ids,
            invited_before=started,
        )
    return invited, changes
