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
from icalendar import Calendar, Timezone

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


def _event(**changes: Any) -> CalendarEvent:
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


def _summer_event(**changes: Any) -> CalendarEvent:
    """A plenary on a summer date (CEST, UTC+2)."""
    summer = dict(
        uid=event_uid("ik-heinsberg-2027", "plenum", PERSON, None, DOMAIN),
        start=datetime(2027, 7, 1, 9, 30, tzinfo=BERLIN),
        end=datetime(2027, 7, 1, 10, 30, tzinfo=BERLIN),
        summary="Plenum",
        location=JOIN,
    )
    return _event(**{**summer, **changes})


def _build(
    events: Sequence[CalendarEvent] | None = None,
    method: Literal["REQUEST", "CANCEL"] = "REQUEST",
    attendee: Party = ATTENDEE,
    **kwargs: Any,
) -> bytes:
    return build_calendar(
        method,
        [_event()] if events is None else events,
        timezone="Europe/Berlin",
        organizer=kwargs.pop("organizer", ORGANIZER),
        attendee=attendee,
        stamp=STAMP,
        **kwargs,
    )


def _icalendar(data: bytes) -> Any:
    """Parse with icalendar (typed loosely: property values are a wide union)."""
    return Calendar.from_ical(data)


def _vobject(data: bytes) -> Any:
    return vobject.readOne(data.decode("utf-8"))


def _unfold(data: bytes) -> list[str]:
    """Logical content lines: CRLF + space/tab continues the previous line."""
    text = data.decode("utf-8")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")


def _vevents(data: bytes) -> list[Any]:
    return list(_icalendar(data).walk("VEVENT"))


# --- every listed field, parser 1: icalendar --------------------------------


def test_request_has_every_field_for_icalendar() -> None:
    cal = _icalendar(_build())
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
    assert str(event["DESCRIPTION"]) == _event().description
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
    lines = _unfold(_build())
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
    cal = _vobject(_build())
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
    assert event.description.value == _event().description
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
    (event,) = _vevents(_build(attendee_role="CHAIR"))
    assert event["ATTENDEE"].params["ROLE"] == "CHAIR"


# --- time zone: winter and summer, and the VTIMEZONE itself ------------------


@pytest.mark.parametrize(
    ("local", "utc", "offset"),
    [
        (datetime(2027, 3, 18, 9, 30), datetime(2027, 3, 18, 8, 30, tzinfo=UTC), 1),
        (datetime(2027, 7, 1, 9, 30), datetime(2027, 7, 1, 7, 30, tzinfo=UTC), 2),
        (datetime(2027, 10, 31, 12, 0), datetime(2027, 10, 31, 11, 0, tzinfo=UTC), 1),
    ],
    ids=["winter", "summer", "day-of-change"],
)
def test_both_parsers_agree_on_the_instant(local: datetime, utc: datetime, offset: int) -> None:
    event = _event(
        start=local.replace(tzinfo=BERLIN), end=local.replace(tzinfo=BERLIN) + timedelta(hours=1)
    )
    data = _build([event])
    wall = local.strftime("%Y%m%dT%H%M%S")
    assert f"DTSTART;TZID=Europe/Berlin:{wall}" in _unfold(data)
    parsed = _vevents(data)[0]["DTSTART"].dt
    # vobject resolves the TZID with the VTIMEZONE we sent, not with the system's zoneinfo.
    other = _vobject(data).vevent.dtstart.value
    assert parsed == other == utc
    assert other.utcoffset() == parsed.utcoffset() == timedelta(hours=offset)


def test_start_in_another_zone_is_written_in_the_conference_zone() -> None:
    start = datetime(2027, 7, 1, 7, 30, tzinfo=UTC)
    data = _build([_event(start=start, end=start + timedelta(hours=1))])
    assert "DTSTART;TZID=Europe/Berlin:20270701T093000" in _unfold(data)


def test_vtimezone_has_standard_and_daylight_with_rfc_onsets() -> None:
    (tz,) = _icalendar(_build()).walk("VTIMEZONE")
    (standard,) = tz.walk("STANDARD")
    (daylight,) = tz.walk("DAYLIGHT")
    assert (standard["TZOFFSETFROM"].td, standard["TZOFFSETTO"].td) == (
        timedelta(hours=2),
        timedelta(hours=1),
    )
    assert (daylight["TZOFFSETFROM"].td, daylight["TZOFFSETTO"].td) == (
        timedelta(hours=1),
        timedelta(hours=2),
    )
    assert (str(standard["TZNAME"]), str(daylight["TZNAME"])) == ("CET", "CEST")
    # RFC 5545 3.6.5: the onset is the wall clock in TZOFFSETFROM (02:00 CET, 03:00 CEST).
    assert daylight["DTSTART"].dt == datetime(2026, 3, 29, 2, 0)
    assert standard["DTSTART"].dt == datetime(2026, 10, 25, 3, 0)
    assert daylight["RRULE"] == {"FREQ": ["YEARLY"], "BYMONTH": [3], "BYDAY": ["-1SU"]}
    assert standard["RRULE"] == {"FREQ": ["YEARLY"], "BYMONTH": [10], "BYDAY": ["-1SU"]}
    lines = _unfold(_build())
    assert lines.count("TZOFFSETTO:+0100") == 1
    assert lines.count("TZOFFSETTO:+0200") == 1


def test_vobject_sees_standard_and_daylight() -> None:
    tz = _vobject(_build()).vtimezone
    assert tz.standard.tzoffsetto.value == "+0100"
    assert tz.daylight.tzoffsetto.value == "+0200"


def _checkpoints(zone: ZoneInfo, first: datetime, days: int) -> list[datetime]:
    """Noon UTC of every day, and every quarter hour of a day on which the offset changes."""
    moments = []
    for day in (first + timedelta(days=n) for n in range(days)):
        following = day + timedelta(days=1)
        changes = day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset()
        moments += [day + timedelta(minutes=15 * i) for i in range(96 if changes else 1)]
    return moments


@pytest.mark.parametrize(
    "tzid",
    ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Tokyo", "America/Sao_Paulo"],
)
def test_vtimezone_matches_zoneinfo_around_every_change(tzid: str) -> None:
    zone = ZoneInfo(tzid)
    start = datetime(2019, 3, 18, 9, 30, tzinfo=zone)
    data = build_calendar(
        "REQUEST",
        [_event(start=start, end=start + timedelta(hours=1))],
        timezone=tzid,
        organizer=ORGANIZER,
        attendee=ATTENDEE,
        stamp=STAMP,
    )
    (vtimezone,) = _icalendar(data).walk("VTIMEZONE")
    assert isinstance(vtimezone, Timezone)
    from_vtimezone = vtimezone.to_tz(lookup_tzid=False)  # our definition, not the system's
    wrong = [
        moment
        for moment in _checkpoints(zone, datetime(2019, 1, 1, tzinfo=UTC), days=730)
        if moment.astimezone(from_vtimezone).utcoffset() != moment.astimezone(zone).utcoffset()
    ]
    assert wrong == []


def test_zone_without_daylight_saving_has_one_standard_observance() -> None:
    start = datetime(2027, 7, 1, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    data = build_calendar(
        "REQUEST",
        [_event(start=start, end=start + timedelta(hours=1))],
        timezone="Asia/Tokyo",
        organizer=ORGANIZER,
        attendee=ATTENDEE,
        stamp=STAMP,
    )
    (tz,) = _icalendar(data).walk("VTIMEZONE")
    assert [c.name for c in tz.subcomponents] == ["STANDARD"]
    assert _vobject(data).vevent.dtstart.value == datetime(2027, 7, 1, 0, 30, tzinfo=UTC)


# --- changes: SEQUENCE and CANCEL ---------------------------------------------


def test_change_keeps_uid_and_raises_sequence() -> None:
    first = _vevents(_build([_event()]))[0]
    moved = _event(sequence=1, start=_event().start + timedelta(hours=1), end=_event().end)
    second = _vevents(_build([moved]))[0]
    assert second["UID"] == first["UID"]
    assert (first["SEQUENCE"], second["SEQUENCE"]) == (0, 1)
    assert _vobject(_build([moved])).vevent.sequence.value == "1"


def test_cancel_has_method_status_uid_and_given_sequence() -> None:
    data = _build([_event(sequence=2, cancelled=True)], method="CANCEL")
    cal = _icalendar(data)
    assert str(cal["METHOD"]) == "CANCEL"
    (event,) = cal.walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["SEQUENCE"] == 2
    assert str(event["UID"]) == _event().uid
    assert event["ATTENDEE"].params["RSVP"] == "FALSE"  # nothing to answer
    other = _vobject(data)
    assert other.method.value == "CANCEL"
    assert other.vevent.status.value == "CANCELLED"
    assert other.vevent.sequence.value == "2"
    assert other.vevent.uid.value == _event().uid


def test_cancel_sets_status_even_without_the_flag() -> None:
    (event,) = _vevents(_build([_event(sequence=1)], method="CANCEL"))
    assert str(event["STATUS"]) == "CANCELLED"


# --- several events -----------------------------------------------------------


def test_several_events_share_one_vtimezone_and_keep_their_order() -> None:
    afternoon = _event(
        uid=event_uid("ik-heinsberg-2027", "abschluss", PERSON, None, DOMAIN),
        start=datetime(2027, 3, 18, 15, 0, tzinfo=BERLIN),
        end=datetime(2027, 3, 18, 16, 0, tzinfo=BERLIN),
        summary="Abschlussplenum",
        sequence=3,
    )
    events = [_summer_event(), _event(), afternoon]
    data = _build(events)
    cal = _icalendar(data)
    assert len(cal.walk("VTIMEZONE")) == 1
    parsed = cal.walk("VEVENT")
    assert [str(e["UID"]) for e in parsed] == [e.uid for e in events]
    assert [e["SEQUENCE"] for e in parsed] == [0, 0, 3]
    assert [e["DTSTART"].dt for e in parsed] == [e.start for e in events]
    other = _vobject(data)
    assert [e.uid.value for e in other.vevent_list] == [e.uid for e in events]
    assert [e.dtstart.value for e in other.vevent_list] == [e.start for e in events]
    assert len(set(e.uid for e in events)) == 3


def test_online_location_is_the_join_link() -> None:
    data = _build([_summer_event()])
    assert str(_vevents(data)[0]["LOCATION"]) == JOIN
    assert _vobject(data).vevent.location.value == JOIN


# --- text: newlines, special characters, scripts -------------------------------


def test_description_with_newlines_and_specials_round_trips() -> None:
    description = (
        "Tagesordnung:\n1. Begrüßung; Einführung\n2. Arbeit, Werte \\ Bildung\n\n"
        f"Ihr persönlicher Link: {JOIN}?a=1&b=2"
    )
    data = _build([_event(description=description)])
    assert str(_vevents(data)[0]["DESCRIPTION"]) == description
    assert _vobject(data).vevent.description.value == description
    line = next(x for x in _unfold(data) if x.startswith("DESCRIPTION:"))
    assert "\\n1. Begrüßung\\; Einführung\\n2. Arbeit\\, Werte \\\\ Bildung" in line


def test_crlf_in_description_becomes_one_newline() -> None:
    data = _build([_event(description="eins\r\nzwei\rdrei\x00vier")])
    assert str(_vevents(data)[0]["DESCRIPTION"]) == "eins\nzwei\ndreivier"


def test_umlauts_and_arabic_survive_both_parsers() -> None:
    summary = "Forum Sprache – اللغة مفتاح الاندماج – Größe, Übung, Äpfel, ß"
    name = "Aylin Öztürk-Şahin (آيلين)"
    data = _build(
        [_event(summary=summary, location="Saal „Süd“")], attendee=Party(ATTENDEE.email, name)
    )
    (event,) = _vevents(data)
    assert str(event["SUMMARY"]) == summary
    assert str(event["LOCATION"]) == "Saal „Süd“"
    assert event["ATTENDEE"].params["CN"] == name
    other = _vobject(data).vevent
    assert other.summary.value == summary
    assert other.attendee.params["CN"] == [name]


# --- hostile text ---------------------------------------------------------------


def _hostile_calendar() -> bytes:
    event = _event(summary=HOSTILE, location=HOSTILE, description=HOSTILE)
    return _build(
        [event], attendee=Party(ATTENDEE.email, HOSTILE), organizer=Party(ORGANIZER.email, HOSTILE)
    )


def test_hostile_name_cannot_start_a_line() -> None:
    lines = _unfold(_hostile_calendar())
    assert not [line for line in lines if line.upper().startswith("BCC")]
    assert sum(line.startswith("ATTENDEE") for line in lines) == 1
    assert (
        sum(line.startswith("BEGIN:") for line in lines) == 5
    )  # VCALENDAR VTIMEZONE DAYLIGHT STANDARD VEVENT
    assert lines[-2:] == ["END:VCALENDAR", ""]


def test_hostile_name_has_exactly_the_expected_properties() -> None:
    data = _hostile_calendar()
    (event,) = _vevents(data)
    assert sorted(event.keys()) == VEVENT_PROPERTIES
    other = _vobject(data).vevent
    assert sorted(key.upper() for key in other.contents) == VEVENT_PROPERTIES
    assert all(len(values) == 1 for values in other.contents.values())


def test_hostile_name_is_one_line_in_both_parsers() -> None:
    data = _hostile_calendar()
    (event,) = _vevents(data)
    other = _vobject(data).vevent
    for cn in (event["ATTENDEE"].params["CN"], event["ORGANIZER"].params["CN"]):
        assert cn == HOSTILE_CN
    assert other.attendee.params["CN"] == [HOSTILE_CN]
    assert other.organizer.params["CN"] == [HOSTILE_CN]
    assert str(event["SUMMARY"]) == other.summary.value == HOSTILE_ONE_LINE
    assert str(event["LOCATION"]) == other.location.value == HOSTILE_ONE_LINE
    assert str(event["DESCRIPTION"]) == other.description.value == HOSTILE.replace("\r\n", "\n")
    assert str(event["ATTENDEE"]) == other.attendee.value == f"mailto:{ATTENDEE.email}"


@pytest.mark.parametrize("breaker", ["\r", "\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\t"])
def test_every_line_breaker_in_a_name_is_a_space(breaker: str) -> None:
    name = f"Anna{breaker}ROLE=CHAIR:mailto:evil@example.org"
    (event,) = _vevents(_build(attendee=Party(ATTENDEE.email, name)))
    assert event["ATTENDEE"].params["CN"] == "Anna ROLE=CHAIR:mailto:evil@example.org"
    assert event["ATTENDEE"].params["ROLE"] == "REQ-PARTICIPANT"
    assert str(event["ATTENDEE"]) == f"mailto:{ATTENDEE.email}"


# --- wire format ------------------------------------------------------------------


def test_lines_are_crlf_terminated_folded_and_valid_utf8() -> None:
    long_text = "Überlange Beschreibung mit Umlauten äöü und العربية " * 8
    data = _build([_event(summary=long_text, description=long_text, location=long_text)])
    assert data.endswith(b"\r\n")
    physical = data.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert all(b"\r" not in line and b"\n" not in line for line in physical)
    for line in physical:
        line.decode("utf-8")  # a fold never splits a character
    assert any(line.startswith(b" ") for line in physical)  # long lines were folded
    assert str(_vevents(data)[0]["SUMMARY"]) == long_text.strip()


def test_same_input_gives_identical_bytes() -> None:
    events = [_event(), _summer_event()]
    assert _build(events) == _build(list(events))
    later = build_calendar(
        "REQUEST",
        events,
        timezone="Europe/Berlin",
        organizer=ORGANIZER,
        attendee=ATTENDEE,
        stamp=STAMP + timedelta(days=1),
    )
    changed = set(_unfold(later)) ^ set(_unfold(_build(events)))
    assert {line.split(":")[0] for line in changed} == {"DTSTAMP"}


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
        _build([_event(**changes)])


@pytest.mark.parametrize(
    "email",
    ["mueller@example.org\r\nBCC: x@evil.example", "a b@example.org", "no-at-sign", '"x"@y.de'],
)
def test_bad_address_is_refused(email: str) -> None:
    with pytest.raises(ValueError):
        _build(attendee=Party(email, "X"))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        _build([])
    with pytest.raises(ValueError):
        _build(attendee_role="BOSS")
    with pytest.raises(ValueError):
        build_calendar(
            "PUBLISH",  # type: ignore[arg-type]
            [_event()],
            timezone="Europe/Berlin",
            organizer=ORGANIZER,
            attendee=ATTENDEE,
            stamp=STAMP,
        )
    with pytest.raises(ValueError):
        build_calendar(
            "REQUEST",
            [_event()],
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


def test_serialise_is_byte_identical_to_the_library() -> None:
    """The fast path must produce exactly what icalendar's own to_ical() produces."""
    from icalendar import Calendar, Event

    from orchestrator.invitations.ics import _serialise

    for text in ("x" * 60, "x" * 61, "x" * 62, "ü" * 40, "a\\b;c,d" * 20, "نور " * 30):
        cal = Calendar()
        cal.add("prodid", "-//t//t//DE")
        event = Event()
        event.add("summary", text)
        event.add("description", text + "\n" + text)
        cal.add_component(event)
        assert _serialise(cal) == cal.to_ical()


def test_spliced_calendar_equals_the_library_serialisation() -> None:
    """build_calendar's cached VTIMEZONE splice gives the bytes icalendar itself would."""
    from zoneinfo import ZoneInfo

    from icalendar import Calendar

    from orchestrator.invitations import ics

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
    stamp = datetime(2027, 1, 1, tzinfo=UTC)
    built = ics.build_calendar(
        "REQUEST", events, timezone="Europe/Berlin", organizer=party, attendee=party, stamp=stamp
    )
    reference = Calendar()
    for name in ("prodid", "version", "calscale", "method"):
        reference.add(
            name,
            {"prodid": ics.PRODID, "version": "2.0", "calscale": "GREGORIAN", "method": "REQUEST"}[
                name
            ],
        )
    reference.add_component(ics._vtimezone("Europe/Berlin", *ics._year_span(events, zone)))
    for event in events:
        reference.add_component(
            ics._vevent("REQUEST", event, zone, party, party, stamp, "REQ-PARTICIPANT")
        )
    assert built == reference.to_ical()


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
@pytest.mark.parametrize(
    "name",
    ['Ömer "O\'Connor" <script>\r\nBcc: x@evil.org', "نور الهدى", "A\\;B,C^D" * 9, ""],
)
def test_line_by_line_vevent_equals_the_library_component(
    method: Literal["REQUEST", "CANCEL"], name: str
) -> None:
    """The per-line VEVENT (shared lines cached) is byte for byte the library's component."""
    from zoneinfo import ZoneInfo

    from orchestrator.invitations import ics

    zone = ZoneInfo("Europe/Berlin")
    organiser = ics.Party("orga@kreis-heinsberg.example", 'Kreis Heinsberg; Amt "47"')
    attendee = ics.Party("oemer@example.org", name)
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
