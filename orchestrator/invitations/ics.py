"""iCalendar invitations (RFC 5545/5546) as a pure function: data in, bytes out.

One VCALENDAR per person, a VTIMEZONE for the conference's zone and one VEVENT per
session. METHOD:REQUEST and METHOD:CANCEL are the iTIP messages mailed by the organiser
(with the person as ATTENDEE); METHOD:PUBLISH is the same entries (same UID and
SEQUENCE) as a plain file to import, without ATTENDEE, which RFC 5546 3.2.1 forbids in
PUBLISH, so no client offers to answer it. All text goes through the ``icalendar``
library's escaping; nothing here concatenates content lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from icalendar import (
    Calendar,
    Component,
    Event,
    Parameters,
    vCalAddress,
    vText,
    vUri,
)
from icalendar.parser import Contentline

from orchestrator.invitations.vtimezone import vtimezone

PRODID = "-//Kreis Heinsberg//Konferenz-Orchestrator//DE"

_Method = Literal["REQUEST", "CANCEL", "PUBLISH"]
_ROLES = frozenset({"CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"})

# Characters that would end or split a content line or a parameter, for any parser.
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LF_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FOLD_AT = 75  # the library folds a line once it reaches 75 octets
_SPACES = re.compile(r"\s+")
_ADDRESS_PART = r"[^\x00-\x20\x7f\x85\u2028\u2029\"<>,;:\\@]+"
_ADDRESS = re.compile(_ADDRESS_PART + "@" + _ADDRESS_PART)
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f\x85\u2028\u2029\"<>\\]")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


@dataclass(frozen=True)
class CalendarEvent:
    """One session as it appears in one person's calendar."""

    uid: str
    sequence: int
    start: datetime  # aware
    end: datetime  # aware
    summary: str
    description: str
    location: str
    url: str
    cancelled: bool = False  # STATUS:CANCELLED (used with METHOD:CANCEL)


@dataclass(frozen=True)
class Party:
    """An organiser or attendee: mail address and display name."""

    email: str
    name: str


def build_calendar(
    method: _Method,
    events: Sequence[CalendarEvent],
    *,
    timezone: str,
    organizer: Party,
    attendee: Party | None = None,
    stamp: datetime,
    attendee_role: str = "REQ-PARTICIPANT",
) -> bytes:
    """Return one person's VCALENDAR (CRLF, folded) for the given events.

    REQUEST and CANCEL need the attendee; PUBLISH must not have one (RFC 5546 3.2.1).
    """
    _check_arguments(method, events, stamp, attendee_role, attendee)
    zone = ZoneInfo(timezone)
    head, end = _calendar_frame(method)
    body = b"".join(
        _vevent_bytes(method, event, zone, organizer, attendee, stamp, attendee_role)
        for event in events
    )
    return head + _timezone_block(timezone, *_year_span(events, zone)) + body + end


@lru_cache(maxsize=4)
def _calendar_frame(method: _Method) -> tuple[bytes, bytes]:
    """The VCALENDAR's own lines, before and after its components (the same for all)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    head, end = _serialise(cal).rsplit(b"END:VCALENDAR", 1)
    return head, b"END:VCALENDAR" + end


@lru_cache(maxsize=64)
def _timezone_block(timezone: str, first: int, last: int) -> bytes:
    """The serialised VTIMEZONE: the same for everyone in a conference, so made once."""
    return _serialise(vtimezone(timezone, first, last))


def _serialise(component: Component) -> bytes:
    """Exactly ``component.to_ical()``, minus the per-character fold of lines that fit.

    The library builds and escapes every content line; lines of 75 octets or more go
    through its own folding. Lines that already fit are left as they are, which is what
    its fold would return for them, at a fraction of the cost (a test pins the equality).
    """
    lines = []
    for line in component.content_lines():
        if line:
            raw = line.encode("utf-8")
            lines.append(raw if len(raw) < _FOLD_AT else _fold(raw))
    return b"\r\n".join(lines) + b"\r\n"


def _fold(raw: bytes) -> bytes:
    """icalendar's fold of one content line, by slicing octets instead of per character.

    Same rule as the library: each piece stays under 75 octets, never splits a UTF-8
    sequence, and a piece does not end in a backslash or caret (an escape would be torn).
    """
    pieces = []
    start, size = 0, len(raw)
    while size - start >= _FOLD_AT:
        cut = start + _FOLD_AT - 1
        while raw[cut] & 0xC0 == 0x80:  # a UTF-8 continuation octet: cut before its lead
            cut -= 1
        if raw[cut - 1] in b"\\^" and len(raw[start:cut].decode("utf-8")) > 1:
            cut -= 1
        pieces.append(raw[start:cut])
        start = cut
    pieces.append(raw[start:])
    return b"\r\n ".join(pieces)


def event_uid(
    conference_slug: str,
    session_key: str,
    person_id: str,
    forum_key: str | None,
    domain: str,
) -> str:
    """Return the stable UID of one person's entry for one session (and forum)."""
    host = domain.strip().lower()
    if not _DOMAIN.fullmatch(host):
        raise ValueError(f"not a domain name for a UID: {domain!r}")
    parts = [conference_slug, session_key, *([forum_key] if forum_key else []), person_id]
    return ".".join(_uid_part(part) for part in parts) + "@" + host


def _uid_part(part: str) -> str:
    """Percent-encode everything but [A-Za-z0-9_-], so distinct keys stay distinct."""
    if not part:
        raise ValueError("a UID part must not be empty")
    return quote(part, safe="").replace(".", "%2E").replace("~", "%7E")


def _check_arguments(
    method: str,
    events: Sequence[CalendarEvent],
    stamp: datetime,
    role: str,
    attendee: Party | None,
) -> None:
    """Refuse input that would produce an invalid iTIP message."""
    if method not in ("REQUEST", "CANCEL", "PUBLISH"):
        raise ValueError(f"unsupported METHOD: {method!r}")
    if method == "PUBLISH" and attendee is not None:
        raise ValueError("METHOD:PUBLISH must not name an ATTENDEE (RFC 5546 3.2.1)")
    if method != "PUBLISH" and attendee is None:
        raise ValueError(f"METHOD:{method} needs an ATTENDEE")
    if not events:
        raise ValueError("a calendar needs at least one event")
    if role not in _ROLES:
        raise ValueError(f"unknown attendee ROLE: {role!r}")
    _require_aware(stamp, "stamp")
    for event in events:
        _check_event(event)


def _check_event(event: CalendarEvent) -> None:
    """Refuse an event with naive or inverted times, a bad sequence or UID."""
    _require_aware(event.start, "start")
    _require_aware(event.end, "end")
    if event.end <= event.start:
        raise ValueError(f"event {event.uid!r} ends before it starts")
    if event.sequence < 0:
        raise ValueError(f"event {event.uid!r} has a negative SEQUENCE")
    if not event.uid or _URL_UNSAFE.search(event.uid):
        raise ValueError(f"unsafe UID: {event.uid!r}")


def _require_aware(moment: datetime, what: str) -> None:
    """Refuse a naive datetime: its instant would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


def _vevent(
    method: _Method,
    event: CalendarEvent,
    zone: ZoneInfo,
    organizer: Party,
    attendee: Party | None,
    stamp: datetime,
    role: str,
) -> Event:
    """Build one VEVENT; every text value is escaped by the library."""
    cancelled = method == "CANCEL" or event.cancelled
    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", stamp.astimezone(UTC))
    vevent.add("dtstart", event.start.astimezone(zone))
    vevent.add("dtend", event.end.astimezone(zone))
    vevent.add("summary", _single_line(event.summary))
    vevent.add("description", _multi_line(event.description))
    vevent.add("location", _single_line(event.location))
    vevent.add("url", vUri(_safe_url(event.url)))
    vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    vevent.add("transp", "OPAQUE")
    vevent.add("organizer", _address(organizer))
    if attendee is not None:
        vevent.add("attendee", _attendee(attendee, role, rsvp=not cancelled))
    return vevent


def _vevent_bytes(
    method: _Method,
    event: CalendarEvent,
    zone: ZoneInfo,
    organizer: Party,
    attendee: Party | None,
    stamp: datetime,
    role: str,
) -> bytes:
    """Exactly ``_serialise(_vevent(...))``, made line by line (a test pins the equality).

    Every line is still built and escaped by the library. Lines that are the same for
    everyone in a session (times, summary, organiser, status) are made once and reused;
    the personal ones (UID, description, location, URL, attendee) go straight through
    the library's content-line builder, without a component around them.
    """
    cancelled = method == "CANCEL" or event.cancelled
    tzid = zone.key
    lines = {
        "UID": _line("UID", vText(event.uid)),
        "SEQUENCE": _shared_line("sequence", event.sequence, ""),
        "DTSTAMP": _shared_line("dtstamp", stamp.astimezone(UTC), "UTC"),
        "DTSTART": _shared_line("dtstart", event.start.astimezone(zone), tzid),
        "DTEND": _shared_line("dtend", event.end.astimezone(zone), tzid),
        "SUMMARY": _shared_line("summary", _single_line(event.summary), ""),
        "DESCRIPTION": _line("DESCRIPTION", vText(_multi_line(event.description))),
        "LOCATION": _line("LOCATION", vText(_single_line(event.location))),
        "URL": _line("URL", vUri(_safe_url(event.url))),
        "STATUS": _shared_line("status", "CANCELLED" if cancelled else "CONFIRMED", ""),
        "TRANSP": _shared_line("transp", "OPAQUE", ""),
        "ORGANIZER": _organizer_line(organizer.email, organizer.name),
    }
    if attendee is not None:
        lines["ATTENDEE"] = _line("ATTENDEE", _attendee(attendee, role, rsvp=not cancelled))
    body = b"".join(lines[name] for name in _event_order() if name in lines)
    return b"BEGIN:VEVENT\r\n" + body + b"END:VEVENT\r\n"


@lru_cache(maxsize=1)
def _event_order() -> tuple[str, ...]:
    """The order in which icalendar writes these VEVENT properties."""
    names = ["UID", "SEQUENCE", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION"]
    names += ["LOCATION", "URL", "STATUS", "TRANSP", "ORGANIZER", "ATTENDEE"]
    reference = Event()
    for name in names:
        reference[name] = vText("")
    return tuple(reference.sorted_keys())


def _line(name: str, value: Any) -> bytes:
    """One content line (folded, CRLF-terminated) of an already typed library value."""
    params = getattr(value, "params", None) or Parameters()
    raw = Contentline.from_parts(name, params, value).encode("utf-8")
    return (raw if len(raw) < _FOLD_AT else _fold(raw)) + b"\r\n"


@lru_cache(maxsize=4096)
def _shared_line(name: str, value: str | int | datetime, tzid: str) -> bytes:
    """A line that repeats from person to person, typed and written by the library once.

    `tzid` is part of the cache key: aware datetimes of the same instant compare equal
    whatever their zone, but their lines differ.
    """
    component = Event()
    component.add(name, value)
    return _serialise(component).removeprefix(b"BEGIN:VEVENT\r\n").removesuffix(b"END:VEVENT\r\n")


@lru_cache(maxsize=256)
def _organizer_line(email: str, name: str) -> bytes:
    return _line("ORGANIZER", _address(Party(email=email, name=name)))


def _attendee(party: Party, role: str, *, rsvp: bool) -> vCalAddress:
    """ATTENDEE with CN, CUTYPE, ROLE, PARTSTAT and RSVP."""
    address = _address(party)
    address.params["CUTYPE"] = "INDIVIDUAL"
    address.params["ROLE"] = role
    address.params["PARTSTAT"] = "NEEDS-ACTION"
    address.params["RSVP"] = "TRUE" if rsvp else "FALSE"
    return address


def _address(party: Party) -> vCalAddress:
    """A ``mailto:`` calendar address with a CN that cannot break the parameter."""
    email = party.email.strip()
    if not _ADDRESS.fullmatch(email):
        raise ValueError(f"not a usable mail address: {party.email!r}")
    address = vCalAddress(f"mailto:{email}")
    name = _param_text(party.name)
    if name:
        address.params["CN"] = name
    return address


def _single_line(text: str) -> str:
    """Text for SUMMARY/LOCATION: line breaks and control characters become spaces."""
    cleaned = _CONTROL.sub(" ", _LINE_BREAKS.sub(" ", text))
    return _SPACES.sub(" ", cleaned).strip()


def _multi_line(text: str) -> str:
    """Text for DESCRIPTION: line breaks become LF, other control characters go."""
    return _CONTROL_BUT_LF_TAB.sub("", _LINE_BREAKS.sub("\n", text)).strip()


def _param_text(text: str) -> str:
    """A parameter value (CN): one line, and ``"`` as ``'``.

    icalendar would write ``"`` as RFC 6868 ``^'``, which many clients (and
    vobject) show literally; an apostrophe reads the same everywhere.
    """
    return _single_line(text).replace('"', "'")


def _safe_url(url: str) -> str:
    """Refuse a URL that contains spaces, control characters or quotes."""
    if not url or _URL_UNSAFE.search(url):
        raise ValueError(f"unsafe URL: {url!r}")
    return url


def _year_span(events: Sequence[CalendarEvent], zone: ZoneInfo) -> tuple[int, int]:
    """The years (in the zone) from the year before the first event to after the last."""
    years = [moment.astimezone(zone).year for e in events for moment in (e.start, e.end)]
    return min(years) - 1, max(years) + 1
