"""The iCalendar builder, read back with two independent parsers (icalendar and vobject)."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
import vobject
from icalendar import Calendar

from orchestrator.invitations import ics
from orchestrator.invitations.ics import (
    PRODID,
    CalendarEvent,
    Party,
    build_calendar,
    event_uid,
)

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2027, 1, 5, 12, 0, 7, tzinfo=UTC)
ORGANIZER = Party("ki@kreis-heinsberg.de", "Kommunales Integrationszentrum Heinsberg")
ATTENDEE = Party("mueller@example.org", "Jürgen Müller")
HOSTILE = 'Ömer "O\'Connor" <script>\r\nBCC: x@evil.example'
HOSTILE_ONE_LINE = 'Ömer "O\'Connor" <script> BCC: x@evil.example'
HOSTILE_CN = "Ömer 'O'Connor' <script> BCC: x@evil.example"
JOIN = "https://konferenz.kreis-heinsberg.de/j/tok3n/forum-sprache-x7k2"
PERSON = "5b0e6f2c-4f53-4c1e-9a43-0d3e1c9b7a11"
DOMAIN = "konferenz.kreis-heinsberg.de"
VEVENT_PROPERTIES = [
    "ATTENDEE",
    "DESCRIPTION",
    "DTEND",
    "DTSTAMP",
    "DTSTART",
    "LOCATION",
    "ORGANIZER",
    "SEQUENCE",
    "STATUS",
    "SUMMARY",
    "TRANSP",
    "UID",
    "URL",
]


def make_event(**changes: Any) -> CalendarEvent:
    """A forum session on a winter date (CET, UTC+1), with optional changes."""
    event = CalendarEvent(
        uid=event_uid("ik-heinsberg-2027", "forums", PERSON, "sprache", DOMAIN),
        sequence=0,
        start=datetime(2027, 3, 18, 9, 30, tzinfo=BERLIN),
        end=datetime(2027, 3, 18, 11, 0, tzinfo=BERLIN),
        summary="Forum Sprache",
        description=f"Sprache als Schlüssel; Vielfalt, Teilhabe\nIhr Link: {JOIN}",
        location="Kreishaus Heinsberg, Raum 1.12",
        url=JOIN,
    )
    return dataclasses.replace(event, **changes)


def summer_event(**changes: Any) -> CalendarEvent:
    """A plenary on a summer date (CEST, UTC+2)."""
    summer = dict(
        uid=event_uid("ik-heinsberg-2027", "plenum", PERSON, None, DOMAIN),
        start=datetime(2027, 7, 1, 9, 30, tzinfo=BERLIN),
        end=datetime(2027, 7, 1, 10, 30, tzinfo=BERLIN),
        summary="Plenum",
        location=JOIN,
    )
    return make_event(**{**summer, **changes})


def build(
    events: Sequence[CalendarEvent] | None = None,
    method: Literal["REQUEST", "CANCEL", "PUBLISH"] = "REQUEST",
    attendee: Party | None = ATTENDEE,
    **kwargs: Any,
) -> bytes:
    return build_calendar(
        method,
        [make_event()] if events is None else events,
        timezone="Europe/Berlin",
        organizer=kwargs.pop("organizer", ORGANIZER),
        attendee=attendee,
        stamp=STAMP,
        **kwargs,
    )


def parse_icalendar(data: bytes) -> Any:
    """Parse with icalendar (typed loosely: property values are a wide union)."""
    return Calendar.from_ical(data)


def parse_vobject(data: bytes) -> Any:
    return vobject.readOne(data.decode("utf-8"))


def unfold(data: bytes) -> list[str]:
    """Logical content lines: CRLF + space/tab continues the previous line."""
    text = data.decode("utf-8")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")


def parsed_vevents(data: bytes) -> list[Any]:
    return list(parse_icalendar(data).walk("VEVENT"))


# --- every listed field, parser 1: icalendar --------------------------------


def test_request_has_every_field_for_icalendar() -> None:
    cal = parse_icalendar(build())
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(cal["PRODID"]) == PRODID
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["CALSCALE"]) == "GREGORIAN"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    (event,) = cal.walk("VEVENT")
    assert sorted(event.keys()) == VEVENT_PROPERTIES
    assert str(event["UID"]) == f"ik-heinsberg-2027.forums.sprache.{PERSON}@{DOMAIN}"
    assert event["SEQUENCE"] == 0
    assert event["DTSTAMP"].dt == STAMP
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTEND"].params["TZID"] == "Europe/Berlin"
    assert event["DTSTART"].dt == datetime(2027, 3, 18, 8, 30, tzinfo=UTC)
    assert event["DTEND"].dt == datetime(2027, 3, 18, 10, 0, tzinfo=UTC)
    assert str(event["SUMMARY"]) == "Forum Sprache"
    assert str(event["DESCRIPTION"]) == make_event().description
    assert str(event["LOCATION"]) == "Kreishaus Heinsberg, Raum 1.12"
    assert str(event["URL"]) == JOIN
    assert str(event["STATUS"]) == "CONFIRMED"
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:ki@kreis-heinsberg.de"
    assert organizer.params["CN"] == ORGANIZER.name
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:mueller@example.org"
    assert dict(attendee.params) == {
        "CN": "Jürgen Müller",
        "CUTYPE": "INDIVIDUAL",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
    }


def test_raw_lines_carry_tzid_and_utc_stamp() -> None:
    lines = unfold(build())
    assert "DTSTART;TZID=Europe/Berlin:20270318T093000" in lines
    assert "DTEND;TZID=Europe/Berlin:20270318T110000" in lines
    assert "DTSTAMP:20270105T120007Z" in lines
    assert lines[:5] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
    ]


# --- every listed field, parser 2: vobject ----------------------------------


def test_request_has_every_field_for_vobject() -> None:
    cal = parse_vobject(build())
    assert cal.method.value == "REQUEST"
    assert cal.prodid.value == PRODID
    assert cal.version.value == "2.0"
    assert cal.calscale.value == "GREGORIAN"
    assert cal.vtimezone.tzid.value == "Europe/Berlin"
    (event,) = cal.vevent_list
    assert event.uid.value == f"ik-heinsberg-2027.forums.sprache.{PERSON}@{DOMAIN}"
    assert event.sequence.value == "0"
    assert event.dtstamp.value == STAMP
    assert event.dtstart.value == datetime(2027, 3, 18, 8, 30, tzinfo=UTC)
    assert event.dtend.value == datetime(2027, 3, 18, 10, 0, tzinfo=UTC)
    assert event.summary.value == "Forum Sprache"
    assert event.description.value == make_event().description
    assert event.location.value == "Kreishaus Heinsberg, Raum 1.12"
    assert event.url.value == JOIN
    assert event.status.value == "CONFIRMED"
    assert event.organizer.value == "mailto:ki@kreis-heinsberg.de"
    assert event.organizer.params == {"CN": [ORGANIZER.name]}
    assert event.attendee.value == "mailto:mueller@example.org"
    assert event.attendee.params == {
        "CN": ["Jürgen Müller"],
        "CUTYPE": ["INDIVIDUAL"],
        "ROLE": ["REQ-PARTICIPANT"],
        "PARTSTAT": ["NEEDS-ACTION"],
        "RSVP": ["TRUE"],
    }


def test_attendee_role_is_passed_through() -> None:
    (event,) = parsed_vevents(build(attendee_role="CHAIR"))
    assert event["ATTENDEE"].params["ROLE"] == "CHAIR"


# --- changes: SEQUENCE and CANCEL ---------------------------------------------


def test_change_keeps_uid_and_raises_sequence() -> None:
    first = parsed_vevents(build([make_event()]))[0]
    moved = make_event(
        sequence=1, start=make_event().start + timedelta(hours=1), end=make_event().end
    )
    second = parsed_vevents(build([moved]))[0]
    assert second["UID"] == first["UID"]
    assert (first["SEQUENCE"], second["SEQUENCE"]) == (0, 1)
    assert parse_vobject(build([moved])).vevent.sequence.value == "1"


def test_cancel_has_method_status_uid_and_given_sequence() -> None:
    data = build([make_event(sequence=2, cancelled=True)], method="CANCEL")
    cal = parse_icalendar(data)
    assert str(cal["METHOD"]) == "CANCEL"
    (event,) = cal.walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["SEQUENCE"] == 2
    assert str(event["UID"]) == make_event().uid
    assert event["ATTENDEE"].params["RSVP"] == "FALSE"  # nothing to answer
    other = parse_vobject(data)
    assert other.method.value == "CANCEL"
    assert other.vevent.status.value == "CANCELLED"
    assert other.vevent.sequence.value == "2"
    assert other.vevent.uid.value == make_event().uid


def test_cancel_sets_status_even_without_the_flag() -> None:
    (event,) = parsed_vevents(build([make_event(sequence=1)], method="CANCEL"))
    assert str(event["STATUS"]) == "CANCELLED"


# --- several events -----------------------------------------------------------


def test_several_events_share_one_vtimezone_and_keep_their_order() -> None:
    afternoon = make_event(
        uid=event_uid("ik-heinsberg-2027", "abschluss", PERSON, None, DOMAIN),
        start=datetime(2027, 3, 18, 15, 0, tzinfo=BERLIN),
        end=datetime(2027, 3, 18, 16, 0, tzinfo=BERLIN),
        summary="Abschlussplenum",
        sequence=3,
    )
    events = [summer_event(), make_event(), afternoon]
    data = build(events)
    cal = parse_icalendar(data)
    assert len(cal.walk("VTIMEZONE")) == 1
    parsed = cal.walk("VEVENT")
    assert [str(e["UID"]) for e in parsed] == [e.uid for e in events]
    assert [e["SEQUENCE"] for e in parsed] == [0, 0, 3]
    assert [e["DTSTART"].dt for e in parsed] == [e.start for e in events]
    other = parse_vobject(data)
    assert [e.uid.value for e in other.vevent_list] == [e.uid for e in events]
    assert [e.dtstart.value for e in other.vevent_list] == [e.start for e in events]
    assert len(set(e.uid for e in events)) == 3


def test_online_location_is_the_join_link() -> None:
    data = build([summer_event()])
    assert str(parsed_vevents(data)[0]["LOCATION"]) == JOIN
    assert parse_vobject(data).vevent.location.value == JOIN


# --- UIDs ----------------------------------------------------------------------------


def test_event_uid_is_stable_and_readable() -> None:
    uid = event_uid("ik-heinsberg-2027", "forums", PERSON, "sprache", DOMAIN)
    assert uid == f"ik-heinsberg-2027.forums.sprache.{PERSON}@{DOMAIN}"
    assert uid == event_uid("ik-heinsberg-2027", "forums", PERSON, "sprache", DOMAIN.upper())
    plenary = event_uid("ik-heinsberg-2027", "plenum", PERSON, None, DOMAIN)
    assert plenary == f"ik-heinsberg-2027.plenum.{PERSON}@{DOMAIN}"


def test_event_uid_keeps_distinct_keys_distinct() -> None:
    uids = {
        event_uid("a.b", "c", PERSON, None, DOMAIN),
        event_uid("a", "b.c", PERSON, None, DOMAIN),
        event_uid("a", "b", PERSON, "c", DOMAIN),
        event_uid("a", "b c", PERSON, None, DOMAIN),
        event_uid("a", "b@c", PERSON, None, DOMAIN),
        event_uid("a", "Bücher", PERSON, None, DOMAIN),
    }
    assert len(uids) == 6
    assert all(uid.isascii() and " " not in uid and uid.count("@") == 1 for uid in uids)


@pytest.mark.parametrize(
    ("parts", "domain"),
    [(("a", "b", PERSON, None), "evil example"), (("a", "", PERSON, None), DOMAIN)],
)
def test_event_uid_refuses_bad_parts(parts: tuple[str, str, str, str | None], domain: str) -> None:
    with pytest.raises(ValueError):
        event_uid(*parts, domain)


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"start": datetime(2027, 3, 18, 9, 30)},
        {"end": datetime(2027, 3, 18, 9, 0, tzinfo=BERLIN)},
        {"sequence": -1},
        {"url": "https://x.example/a b"},
        {"url": "https://x.example/\r\nBCC:x"},
        {"uid": "a\r\nb@x"},
    ],
    ids=["naive", "inverted", "negative-sequence", "space-in-url", "crlf-in-url", "crlf-in-uid"],
)
def test_bad_event_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build([make_event(**changes)])


@pytest.mark.parametrize(
    "email",
    ["mueller@example.org\r\nBCC: x@evil.example", "a b@example.org", "no-at-sign", '"x"@y.de'],
)
def test_bad_address_is_refused(email: str) -> None:
    with pytest.raises(ValueError):
        build(attendee=Party(email, "X"))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        build([])
    with pytest.raises(ValueError):
        build(attendee_role="BOSS")
    with pytest.raises(ValueError):
        build_calendar(
            "REPLY",  # type: ignore[arg-type]
            [make_event()],
            timezone="Europe/Berlin",
            organizer=ORGANIZER,
            attendee=ATTENDEE,
            stamp=STAMP,
        )
    with pytest.raises(ValueError):
        build_calendar(
            "REQUEST",
            [make_event()],
            timezone="Europe/Berlin",
            organizer=ORGANIZER,
            attendee=ATTENDEE,
            stamp=datetime(2027, 1, 5),
        )


# --- dependency rule --------------------------------------------------------------------


def test_module_imports_no_edge_framework() -> None:
    tree = ast.parse(Path(ics.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    edge = {"fastapi", "starlette", "typer", "httpx", "aiosmtplib", "apscheduler", "sqlalchemy"}
    assert not imported & edge
