"""The programme in a reminder mail: the person's agenda, and the session a reminder is about.

The agenda lines are the ones the invitation shows (`invitations.desired`: the same order,
places and join links; a test holds the two together), made without the calendar texts a
reminder does not carry. One `Agenda` serves a batch of reminders: the sessions, forums,
rooms and times are the same for everyone; only the join link (the person's token) and
online attendance (no place) differ from person to person.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
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
from orchestrator.invitations.desired import AgendaItem
from orchestrator.participants.models import AttendanceMode, Person
from orchestrator.scheduling.models import ReminderKind
from orchestrator.scheduling.planning import PlannedReminder, attendance_mode, scheduled

_AT_SESSION = frozenset({ReminderKind.BEFORE_SESSION, ReminderKind.STARTING_NOW})


@dataclass(frozen=True)
class _Line:
    """An agenda line as everyone attending it sees it; the join link adds their token."""

    title: str
    forum: str
    start: datetime
    end: datetime
    place: str
    room: str | None  # the online room's name; None when it cannot be joined online


class Agenda:
    """One conference's agenda lines, made once and shared by everyone's reminder mails."""

    def __init__(self, conference: Conference, base_url: str) -> None:
        self.conference, self.base_url = conference, base_url
        self.zone = ZoneInfo(conference.timezone)
        self.forums = {forum.id: forum for forum in conference.forums}
        live = [item for item in conference.sessions if item.status is not SessionStatus.CANCELLED]
        self.sessions = sorted(live, key=lambda item: (item.starts_at, item.id))
        self.lines: dict[tuple[int, int | None], _Line] = {}

    def items(self, person: Person, seats: Mapping[int, int | None]) -> dict[int, AgendaItem]:
        """The person's agenda by session id, in programme order (rounds with a seat only)."""
        away = attendance_mode(self.conference, person) is AttendanceMode.ONLINE
        items: dict[int, AgendaItem] = {}
        for item in self.sessions:
            forum, forum_id = None, seats.get(item.id)
            if item.kind is not SessionKind.PLENARY:
                forum = self.forums.get(forum_id) if forum_id is not None else None
                if forum is None:
                    continue  # a round without a seat (or only on its waiting list)
            line = self._line(item, forum)
            join = None if line.room is None else f"{self.base_url}/j/{person.token}/{line.room}"
            place = "" if away else line.place
            items[item.id] = AgendaItem(line.title, line.forum, line.start, line.end, place, join)
        return items

    def _line(self, item: ConferenceSession, forum: Forum | None) -> _Line:
        key = (item.id, forum.id if forum is not None else None)
        if (line := self.lines.get(key)) is None:
            room = forum.room if forum is not None else plenary_room(item)
            if self.conference.mode is ConferenceMode.IN_PERSON:
                room = None
            parts = (self.conference.venue, forum.in_person_room if forum else "")
            start, end = item.starts_at.astimezone(self.zone), item.ends_at.astimezone(self.zone)
            line = _Line(
                title=item.title,
                forum=forum.title if forum else "",
                start=start,
                end=end,
                place=", ".join(part for part in parts if part),
                room=room.name if room is not None else None,
            )
            self.lines[key] = line
        return line


def _session_context(item: AgendaItem | None, kind: ReminderKind, now: datetime) -> dict[str, Any]:
    """The session a reminder is about, and how soon it starts (days on the wall clock)."""
    if item is None:
        raise ValueError("Termin nicht mehr im Programm")
    if kind is ReminderKind.STARTING_NOW and item.join_url is None:
        raise ValueError("kein Online-Raum")
    days = (item.start.date() - now.astimezone(item.start.tzinfo).date()).days
    minutes = max(0, math.ceil((item.start - now).total_seconds() / 60))
    return {"item": item, "days_left": days, "minutes_left": minutes}


def kind_context(
    conference: Conference, planned: PlannedReminder, items: dict[int, AgendaItem], now: datetime
) -> dict[str, Any]:
    """What each kind of reminder mail needs beyond the shared layout."""
    zone = ZoneInfo(conference.timezone)
    if planned.kind in _AT_SESSION:
        item = items.get(planned.session_id) if planned.session_id is not None else None
        return _session_context(item, planned.kind, now)
    if planned.kind is ReminderKind.RSVP_NEEDED:
        return {"starts": scheduled(conference)[0].starts_at.astimezone(zone)}
    if planned.kind is ReminderKind.CHOOSE_FORUM:
        (round_,) = [item for item in conference.sessions if item.id == planned.session_id]
        forums = [forum.title for forum in conference.forums if forum.session_id == round_.id]
        return {"round": round_, "round_start": round_.starts_at.astimezone(zone), "forums": forums}
    return {"agenda": []}  # after the conference: no programme, the results link instead
