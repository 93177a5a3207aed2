"""What each person's calendar should hold, and the mails (through the outbox) that put it there.

Invitations go to every invitee whatever their consent flag says: the invitation is what asks
for consent, and its privacy line links to the page where a person can withdraw it. A
CalendarEntry records each VEVENT as last sent (UID, SEQUENCE, fingerprint); comparing the
entries with `desired_events` tells what to update or cancel. Entries and outbox rows are
written in the caller's transaction, so both commit or neither does.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import (
    Conference,
    ConferenceMode,
    ConferenceSession,
    Forum,
    SessionKind,
    SessionStatus,
)
from orchestrator.conferences.service import plenary_room
from orchestrator.invitations.ics import CalendarEvent, Party, build_calendar, event_uid
from orchestrator.invitations.models import CalendarEntry, EntryStatus
from orchestrator.mail.outbox import Outgoing, enqueue_many
from orchestrator.mail.rendering import build_message, mailbox, one_line, render, render_event
from orchestrator.participants.models import Assignment, AssignmentStatus, AttendanceMode, Person
from orchestrator.participants.service import personal_url

log = logging.getLogger(__name__)
_ENTRIES = cast(Table, CalendarEntry.__table__)

INVITATION, UPDATE, CANCELLATION = "invitation", "update", "cancellation"
MAIL_KINDS = (INVITATION, UPDATE, CANCELLATION)
_BATCH = 500  # mails handed to the outbox at a time: 5,000 messages never sit in memory

Key = tuple[int, int | None]  # (session id, forum id): one VEVENT per person and key
Seats = dict[int, int]  # breakout round id -> id of the forum the person holds a seat in


@dataclass(frozen=True)
class AgendaItem:
    """One line of the agenda in a mail (times in the conference's zone)."""

    title: str
    forum: str
    start: datetime
    end: datetime
    place: str  # empty for people who join online
    join_url: str | None  # /j/{token}/{room}, when the session can be joined online
    changed: bool = False


@dataclass(frozen=True)
class Desired:
    """One VEVENT the person's calendar should hold (SEQUENCE is set when it is sent)."""

    key: Key
    event: CalendarEvent
    item: AgendaItem
    fingerprint: str


@dataclass
class Report:
    """What a run queued: mails, and the calendar events requested and cancelled."""

    people: int = 0  # people who got a mail
    queued: int = 0  # mails added to the outbox
    updated: int = 0  # events requested (new, changed or requested again)
    cancelled: int = 0  # events withdrawn with METHOD:CANCEL
    skipped: list[str] = field(default_factory=list)  # person ids no mail could be built for


@dataclass
class _Run:
    """What every mail of one run needs."""

    conference: Conference
    base_url: str
    domain: str
    sender: str
    now: datetime
    sessions: dict[int, ConferenceSession] = field(init=False)
    forums: dict[int, Forum] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = {item.id: item for item in self.conference.sessions}
        self.forums = {forum.id: forum for forum in self.conference.forums}


def _mode(conference: Conference, person: Person) -> AttendanceMode:
    """An online or in-person-only conference decides; a hybrid one leaves it to the person."""
    if conference.mode is ConferenceMode.HYBRID:
        return person.attendance_mode
    online = conference.mode is ConferenceMode.ONLINE
    return AttendanceMode.ONLINE if online else AttendanceMode.IN_PERSON


def _attended(run: _Run, seats: Seats) -> list[tuple[ConferenceSession, Forum | None]]:
    """Plenaries not cancelled, and each round not cancelled in which the person has a seat."""
    forums = run.forums
    pairs: list[tuple[ConferenceSession, Forum | None]] = []
    for item in sorted(run.sessions.values(), key=lambda s: (s.starts_at, s.id)):
        if item.status is SessionStatus.CANCELLED:
            continue
        if item.kind is SessionKind.PLENARY:
            pairs.append((item, None))
        elif (forum := forums.get(seats.get(item.id, -1))) is not None:
            pairs.append((item, forum))
    return pairs


def _join_url(
    conference: Conference, person: Person, item: ConferenceSession, forum: Forum | None, base: str
) -> str | None:
    room = forum.room if forum is not None else plenary_room(item)
    if room is None or conference.mode is ConferenceMode.IN_PERSON:
        return None
    return f"{base}/j/{person.token}/{room.name}"


def _fingerprint(event: CalendarEvent) -> str:
    """sha256 of what a calendar shows: a change means an update is due."""
    # UTC: the same instant must hash the same whether it came from the database (UTC)
    # or from an import in this process (the conference's zone).
    start, end = event.start.astimezone(UTC).isoformat(), event.end.astimezone(UTC).isoformat()
    parts = (start, end, event.summary, event.description)
    return hashlib.sha256("\x1f".join((*parts, event.location, event.url)).encode()).hexdigest()


def _desired(run: _Run, person: Person, item: ConferenceSession, forum: Forum | None) -> Desired:
    """One session (and forum) as it should appear in this person's calendar."""
    conference, mode = run.conference, _mode(run.conference, person)
    page = personal_url(run.base_url, person)
    join = _join_url(conference, person, item, forum, run.base_url)
    place = ", ".join(p for p in (conference.venue, forum.in_person_room if forum else "") if p)
    context = {"conference": conference, "session_title": item.title, "forum": forum}
    context |= {"place": place, "mode": mode.value, "personal_url": page, "join_url": join}
    text = render_event(person.language.value, context)
    forum_key = forum.key if forum else None
    event = CalendarEvent(
        uid=event_uid(conference.slug, item.key, str(person.id), forum_key, run.domain),
        sequence=0,
        start=item.starts_at,
        end=item.ends_at,
        summary=text.summary,
        description=text.description,
        location=text.location,
        url=page,
    )
    zone = ZoneInfo(conference.timezone)
    agenda = AgendaItem(
        title=item.title,
        forum=forum.title if forum else "",
        start=item.starts_at.astimezone(zone),
        end=item.ends_at.astimezone(zone),
        place="" if mode is AttendanceMode.ONLINE else place,
        join_url=join,
    )
    return Desired((item.id, forum.id if forum else None), event, agenda, _fingerprint(event))


def desired_events(
    conference: Conference, person: Person, base_url: str, domain: str, seats: Seats | None = None
) -> list[Desired]:
    """What the person's calendar should hold (seats None: from person.assignments, loaded)."""
    if seats is None:
        seats = {
            a.session_id: a.forum_id
            for a in person.assignments
            if a.status is AssignmentStatus.ASSIGNED and a.forum_id is not None
        }
    run = _Run(conference, base_url, domain, sender="", now=datetime.min)
    return [_desired(run, person, item, forum) for item, forum in _attended(run, seats)]


def _mail(
    run: _Run,
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
    run: _Run, person: Person, entry: CalendarEntry
) -> tuple[CalendarEvent, AgendaItem] | None:
    """An entry no longer wanted, as a cancelled event one SEQUENCE up."""
    item = run.sessions.get(entry.session_id)
    forum = run.forums.get(entry.forum_id) if entry.forum_id is not None else None
    if item is None or (entry.forum_id is not None and forum is None):
        return None  # its session or forum is gone (and the entry with it, by cascade)
    was = _desired(run, person, item, forum)
    event = replace(was.event, uid=entry.uid, sequence=entry.sequence + 1, cancelled=True)
    return event, was.item


@dataclass
class _Changes:
    """One person's difference between calendar entries and desired events."""

    requests: list[tuple[Desired, CalendarEntry | None]]
    cancels: list[tuple[CalendarEntry, CalendarEvent, AgendaItem]]
    agenda: list[AgendaItem]  # the whole desired agenda, new or changed items marked


def _compare(
    run: _Run, person: Person, seats: Seats, entries: dict[Key, CalendarEntry], *, invite: bool
) -> _Changes:
    """What to request (an invitation: everything) and what to cancel (never in one)."""
    desired = [_desired(run, person, item, forum) for item, forum in _attended(run, seats)]
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


def _mails(run: _Run, person: Person, changes: _Changes, *, invite: bool) -> list[Outgoing]:
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


async def _store(session: AsyncSession, pending: _Pending, run: _Run) -> int:
    """Write a batch with one statement per table; returns how many mails were queued."""
    if pending.entries:
        # Core executemany: the ORM's bulk INSERT took ~15x as long for these rows.
        await session.execute(_ENTRIES.insert(), pending.entries)
    if pending.invited:
        mark = update(Person).where(Person.id.in_(pending.invited)).values(invited_at=run.now)
        await session.execute(mark.execution_options(synchronize_session="evaluate"))
    return await enqueue_many(session, pending.mails, message_domain=run.domain, now=run.now)


async def _load(
    session: AsyncSession,
    conference_id: int,
    *,
    invited: bool,
    limit: int | None = None,
    person_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[Person], dict[uuid.UUID, Seats], dict[uuid.UUID, dict[Key, CalendarEntry]]]:
    """People (invited or not; at most `limit`; only `person_ids`), seats, calendar entries."""
    # Serialise runs per conference (PostgreSQL; SQLite serialises writers anyway).
    lock = select(Conference.id).where(Conference.id == conference_id).with_for_update()
    await session.execute(lock)
    sent = Person.invited_at.is_not(None) if invited else Person.invited_at.is_(None)
    mine: tuple[ColumnElement[bool], ...] = (Person.conference_id == conference_id, sent)
    if person_ids is not None:
        mine = (*mine, Person.id.in_(list(person_ids)))
    query = select(Person).where(*mine).order_by(Person.email).limit(limit)
    people = list(await session.scalars(query))
    if limit is not None:
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
    session: AsyncSession,
    run: _Run,
    *,
    invite: bool,
    limit: int | None = None,
    person_ids: Collection[uuid.UUID] | None = None,
) -> Report:
    """Invite everyone not yet invited (invite=True), or sync everyone invited."""
    await session.flush()
    people, seats, entries = await _load(
        session, run.conference.id, invited=not invite, limit=limit, person_ids=person_ids
    )
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
    return report


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
    run = _Run(conference, base_url, message_domain, sender, now)
    report = await _process(session, run, invite=True, limit=limit)
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
) -> Report:
    """Bring invited people's calendars up to date: updates with SEQUENCE+1, and CANCELs."""
    run = _Run(conference, base_url, message_domain, sender, now)
    report = await _process(session, run, invite=False, person_ids=person_ids)
    log.info("invitations.synced", extra={"conference": conference.slug, **asdict(report)})
    return report
