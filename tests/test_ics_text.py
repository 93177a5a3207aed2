"""Text in the calendar: newlines, scripts, hostile names, folding and CRLF."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.invitations.ics import Party, build_calendar
from tests.test_ics import (
    ATTENDEE,
    HOSTILE,
    HOSTILE_CN,
    HOSTILE_ONE_LINE,
    JOIN,
    ORGANIZER,
    STAMP,
    VEVENT_PROPERTIES,
    build,
    make_event,
    parse_vobject,
    parsed_vevents,
    summer_event,
    unfold,
)

# --- text: newlines, special characters, scripts -------------------------------


def test_description_with_newlines_and_specials_round_trips() -> None:
    description = (
        "Tagesordnung:\n1. Begrüßung; Einführung\n2. Arbeit, Werte \\ Bildung\n\n"
        f"Ihr persönlicher Link: {JOIN}?a=1&b=2"
    )
    data = build([make_event(description=description)])
    assert str(parsed_vevents(data)[0]["DESCRIPTION"]) == description
    assert parse_vobject(data).vevent.description.value == description
    line = next(x for x in unfold(data) if x.startswith("DESCRIPTION:"))
    assert "\\n1. Begrüßung\\; Einführung\\n2. Arbeit\\, Werte \\\\ Bildung" in line


def test_crlf_in_description_becomes_one_newline() -> None:
    data = build([make_event(description="eins\r\nzwei\rdrei\x00vier")])
    assert str(parsed_vevents(data)[0]["DESCRIPTION"]) == "eins\nzwei\ndreivier"


def test_umlauts_and_arabic_survive_both_parsers() -> None:
    summary = "Forum Sprache – اللغة مفتاح الاندماج – Größe, Übung, Äpfel, ß"
    name = "Aylin Öztürk-Şahin (آيلين)"
    data = build(
        [make_event(summary=summary, location="Saal „Süd“")], attendee=Party(ATTENDEE.email, name)
    )
    (event,) = parsed_vevents(data)
    assert str(event["SUMMARY"]) == summary
    assert str(event["LOCATION"]) == "Saal „Süd“"
    assert event["ATTENDEE"].params["CN"] == name
    other = parse_vobject(data).vevent
    assert other.summary.value == summary
    assert other.attendee.params["CN"] == [name]


# --- hostile text ---------------------------------------------------------------


def _hostile_calendar() -> bytes:
    event = make_event(summary=HOSTILE, location=HOSTILE, description=HOSTILE)
    return build(
        [event], attendee=Party(ATTENDEE.email, HOSTILE), organizer=Party(ORGANIZER.email, HOSTILE)
    )


def test_hostile_name_cannot_start_a_line() -> None:
    lines = unfold(_hostile_calendar())
    assert not [line for line in lines if line.upper().startswith("BCC")]
    assert sum(line.startswith("ATTENDEE") for line in lines) == 1
    assert (
        sum(line.startswith("BEGIN:") for line in lines) == 5
    )  # VCALENDAR VTIMEZONE DAYLIGHT STANDARD VEVENT
    assert lines[-2:] == ["END:VCALENDAR", ""]


def test_hostile_name_has_exactly_the_expected_properties() -> None:
    data = _hostile_calendar()
    (event,) = parsed_vevents(data)
    assert sorted(event.keys()) == VEVENT_PROPERTIES
    other = parse_vobject(data).vevent
    assert sorted(key.upper() for key in other.contents) == VEVENT_PROPERTIES
    assert all(len(values) == 1 for values in other.contents.values())


def test_hostile_name_is_one_line_in_both_parsers() -> None:
    data = _hostile_calendar()
    (event,) = parsed_vevents(data)
    other = parse_vobject(data).vevent
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
    (event,) = parsed_vevents(build(attendee=Party(ATTENDEE.email, name)))
    assert event["ATTENDEE"].params["CN"] == "Anna ROLE=CHAIR:mailto:evil@example.org"
    assert event["ATTENDEE"].params["ROLE"] == "REQ-PARTICIPANT"
    assert str(event["ATTENDEE"]) == f"mailto:{ATTENDEE.email}"


# --- wire format ------------------------------------------------------------------


def test_lines_are_crlf_terminated_folded_and_valid_utf8() -> None:
    long_text = "Überlange Beschreibung mit Umlauten äöü und العربية " * 8
    data = build([make_event(summary=long_text, description=long_text, location=long_text)])
    assert data.endswith(b"\r\n")
    physical = data.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert all(b"\r" not in line and b"\n" not in line for line in physical)
    for line in physical:
        line.decode("utf-8")  # a fold never splits a character
    assert any(line.startswith(b" ") for line in physical)  # long lines were folded
    assert str(parsed_vevents(data)[0]["SUMMARY"]) == long_text.strip()


def test_same_input_gives_identical_bytes() -> None:
    events = [make_event(), summer_event()]
    assert build(events) == build(list(events))
    later = build_calendar(
        "REQUEST",
        events,
        timezone="Europe/Berlin",
        organizer=ORGANIZER,
        attendee=ATTENDEE,
        stamp=STAMP + timedelta(days=1),
    )
    changed = set(unfold(later)) ^ set(unfold(build(events)))
    assert {line.split(":")[0] for line in changed} == {"DTSTAMP"}
