"""METHOD:PUBLISH, the downloadable file: the invitation's entries without the iTIP parts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.invitations.ics import PRODID, CalendarEvent, build_calendar
from tests.test_ics import (
    ATTENDEE,
    BERLIN,
    DOMAIN,
    ORGANIZER,
    PERSON,
    STAMP,
    VEVENT_PROPERTIES,
    build,
    make_event,
    parse_icalendar,
    parse_vobject,
    parsed_vevents,
    summer_event,
    unfold,
)

# RFC 5546 3.2.1: ATTENDEE (and with it RSVP) MUST NOT be present in a PUBLISH.
PUBLISH_PROPERTIES = [name for name in VEVENT_PROPERTIES if name != "ATTENDEE"]
UID = f"ik-heinsberg-2027.forums.sprache.{PERSON}@{DOMAIN}"


def _publish(*events: CalendarEvent) -> bytes:
    return build(list(events) or [make_event()], method="PUBLISH", attendee=None)


def test_publish_has_every_field_but_attendee_for_icalendar() -> None:
    cal = parse_icalendar(_publish())
    assert str(cal["METHOD"]) == "PUBLISH"
    assert str(cal["PRODID"]) == PRODID
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    (event,) = cal.walk("VEVENT")
    assert sorted(event.keys()) == PUBLISH_PROPERTIES
    assert str(event["UID"]) == UID
    assert event["SEQUENCE"] == 0
    assert event["DTSTAMP"].dt == STAMP
    assert event["DTSTART"].dt == datetime(2027, 3, 18, 8, 30, tzinfo=UTC)
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["ORGANIZER"]) == f"mailto:{ORGANIZER.email}"
    assert event["ORGANIZER"].params["CN"] == ORGANIZER.name


def test_publish_has_every_field_but_attendee_for_vobject() -> None:
    cal = parse_vobject(_publish())
    assert cal.method.value == "PUBLISH"
    assert cal.vtimezone.tzid.value == "Europe/Berlin"
    (event,) = cal.vevent_list
    assert sorted(key.upper() for key in event.contents) == PUBLISH_PROPERTIES
    assert event.uid.value == UID
    assert event.sequence.value == "0"
    assert event.dtstart.value == datetime(2027, 3, 18, 9, 30, tzinfo=BERLIN)
    assert event.status.value == "CONFIRMED"
    assert event.organizer.value == f"mailto:{ORGANIZER.email}"
    assert event.organizer.params == {"CN": [ORGANIZER.name]}


def test_publish_has_no_attendee_and_nothing_to_answer() -> None:
    data = _publish(make_event(), summer_event())
    lines = unfold(data)
    assert lines[4] == "METHOD:PUBLISH"
    assert not [line for line in lines if line.startswith(("ATTENDEE", "REQUEST-STATUS"))]
    assert b"RSVP" not in data and b"PARTSTAT" not in data
    assert ATTENDEE.email.encode() not in data


def test_publish_is_the_request_without_its_attendee() -> None:
    """Same UIDs, SEQUENCEs and content: importing the file updates the mailed entries."""
    events = [summer_event(sequence=3), make_event(sequence=1)]
    request = unfold(build(events))
    publish = unfold(_publish(*events))
    expected = [
        "METHOD:PUBLISH" if line == "METHOD:REQUEST" else line
        for line in request
        if not line.startswith("ATTENDEE")
    ]
    assert publish == expected
    parsed = parsed_vevents(_publish(*events))
    assert [(str(e["UID"]), e["SEQUENCE"]) for e in parsed] == [
        (event.uid, event.sequence) for event in events
    ]


def test_publish_of_a_cancelled_event_says_so() -> None:
    (event,) = parsed_vevents(_publish(make_event(sequence=2, cancelled=True)))
    assert (str(event["STATUS"]), event["SEQUENCE"]) == ("CANCELLED", 2)


def test_attendee_is_required_by_request_and_refused_by_publish() -> None:
    with pytest.raises(ValueError):
        build(method="PUBLISH", attendee=ATTENDEE)
    for method in ("REQUEST", "CANCEL"):
        with pytest.raises(ValueError):
            build_calendar(
                method,
                [make_event()],
                timezone="Europe/Berlin",
                organizer=ORGANIZER,
                stamp=STAMP,
            )
