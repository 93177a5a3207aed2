"""The fast writers give byte for byte what icalendar's own serialisation gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event

from orchestrator.invitations import ics
from orchestrator.invitations.vtimezone import vtimezone

Method = Literal["REQUEST", "CANCEL", "PUBLISH"]
METHODS = ["REQUEST", "CANCEL", "PUBLISH"]


def test_serialise_is_byte_identical_to_the_library() -> None:
    """The fast path must produce exactly what icalendar's own to_ical() produces."""
    for text in ("x" * 60, "x" * 61, "x" * 62, "ü" * 40, "a\\b;c,d" * 20, "نور " * 30):
        cal = Calendar()
        cal.add("prodid", "-//t//t//DE")
        event = Event()
        event.add("summary", text)
        event.add("description", text + "\n" + text)
        cal.add_component(event)
        assert ics._serialise(cal) == cal.to_ical()


@pytest.mark.parametrize("method", METHODS)
def test_spliced_calendar_equals_the_library_serialisation(method: Method) -> None:
    """build_calendar's cached VTIMEZONE splice gives the bytes icalendar itself would."""
    zone = ZoneInfo("Europe/Berlin")
    events = [
        ics.CalendarEvent(
            uid=f"u{i}@example.org",
            sequence=i,
            start=datetime(2027, 3, 18, 9 + i, tzinfo=zone),
            end=datetime(2027, 3, 18, 10 + i, tzinfo=zone),
            summary=f"Sitzung {i} – Ü" * 3,
            description="Agenda\nhttps://example.org/p/x",
            location="Kreishaus",
            url="https://x.org",
        )
        for i in range(3)
    ]
    party = ics.Party("a@example.org", "Anna Müller")
    attendee = None if method == "PUBLISH" else party
    stamp = datetime(2027, 1, 1, tzinfo=UTC)
    built = ics.build_calendar(
        method, events, timezone="Europe/Berlin", organizer=party, attendee=attendee, stamp=stamp
    )
    reference = Calendar()
    reference.add("prodid", ics.PRODID)
    reference.add("version", "2.0")
    reference.add("calscale", "GREGORIAN")
    reference.add("method", method)
    reference.add_component(vtimezone("Europe/Berlin", *ics._year_span(events, zone)))
    for event in events:
        reference.add_component(
            ics._vevent(method, event, zone, party, attendee, stamp, "REQ-PARTICIPANT")
        )
    assert built == reference.to_ical()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "name",
    ['Ömer "O\'Connor" <script>\r\nBcc: x@evil.org', "نور الهدى", "A\\;B,C^D" * 9, ""],
)
def test_line_by_line_vevent_equals_the_library_component(method: Method, name: str) -> None:
    """The per-line VEVENT (shared lines cached) is byte for byte the library's component."""
    zone = ZoneInfo("Europe/Berlin")
    organiser = ics.Party("orga@kreis-heinsberg.example", f'Kreis Heinsberg; Amt "47" {name}')
    attendee = None if method == "PUBLISH" else ics.Party("oemer@example.org", name)
    stamp = datetime(2027, 1, 1, 8, 15, tzinfo=UTC)
    for summer in (False, True):
        month = 7 if summer else 1
        event = ics.CalendarEvent(
            uid=f"ik.forum-{month}.3f2a@example.org",
            sequence=month,
            start=datetime(2027, month, 18, 9, 30, tzinfo=zone),
            end=datetime(2027, month, 18, 11, tzinfo=UTC),
            summary=f"Forum: {name} – Sprache & Arbeit\n",
            description=f"Agenda\r\n{name}\nhttps://example.org/j/abc/room\x07" * 3,
            location=f"https://example.org/j/{month}/forum-sprache-{name[:3]}",
            url="https://example.org/p/abc",
            cancelled=summer,
        )
        for _ in range(2):  # the second round comes from the caches
            built = ics._vevent_bytes(method, event, zone, organiser, attendee, stamp, "CHAIR")
            reference = ics._vevent(method, event, zone, organiser, attendee, stamp, "CHAIR")
            assert built == ics._serialise(reference)
            assert (b"\r\nATTENDEE" in built) is (attendee is not None)
