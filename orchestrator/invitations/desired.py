"""What each person's calendar should hold: one event per session they attend.

Pure: the conference record and a person in, calendar events and agenda lines out. The
service compares these with what was last sent (calendar entries) to decide on mails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from orchestrator.conferences.models import (
    Conference,
    ConferenceMode,
    ConferenceSession,
    Forum,
    SessionKind,
    SessionStatus,
)
from orchestrator.conferences.service import plenary_room
from orchestrator.invitations.ics import CalendarEvent, event_uid
from orchestrator.mail.rendering import render_event
from orchestrator.participants.models import AssignmentStatus, AttendanceMode, Person
from orchestrator.participants.service import personal_url

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
class Run:
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


def attended(
    run: Run, seats: Seats, *, cancelled: bool = False
) -> list[tuple[ConferenceSession, Forum | None]]:
    """Plenaries not cancelled, and each round not cancelled in which the person has a seat
    (with `cancelled`, the cancelled ones too: the personal page shows them as such)."""
    forums = run.forums
    pairs: list[tuple[ConferenceSession, Forum | None]] = []
    for item in sorted(run.sessions.values(), key=lambda s: (s.starts_at, s.id)):
        if item.status is SessionStatus.CANCELLED and not cancelled:
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


def desired_event(
    run: Run, person: Person, item: ConferenceSession, forum: Forum | None
) -> Desired:
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
    conference: Conference,
    person: Person,
    base_url: str,
    domain: str,
    seats: Seats | None = None,
    *,
    cancelled: bool = False,
) -> list[Desired]:
    """What the person's calendar should hold (seats None: from person.assignments, loaded);
    with `cancelled`, also the cancelled sessions they would have attended."""
    if seats is None:
        seats = {
            a.session_id: a.forum_id
            for a in person.assignments
            if a.status is AssignmentStatus.ASSIGNED and a.forum_id is not None
        }
    run = Run(conference, base_url, domain, sender="", now=datetime.min)
    pairs = attended(run, seats, cancelled=cancelled)
    return [desired_event(run, person, item, forum) for item, forum in pairs]
