"""The VTIMEZONE and wall-clock times: winter, summer, the day of change, other zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Timezone

from orchestrator.invitations.ics import build_calendar
from tests.test_ics import (
    ATTENDEE,
    BERLIN,
    ORGANIZER,
    STAMP,
    build,
    make_event,
    parse_icalendar,
    parse_vobject,
    parsed_vevents,
    unfold,
)

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
    event = make_event(
        start=local.replace(tzinfo=BERLIN), end=local.replace(tzinfo=BERLIN) + timedelta(hours=1)
    )
    data = build([event])
    wall = local.strftime("%Y%m%dT%H%M%S")
    assert f"DTSTART;TZID=Europe/Berlin:{wall}" in unfold(data)
    parsed = parsed_vevents(data)[0]["DTSTART"].dt
    # vobject resolves the TZID with the VTIMEZONE we sent, not with the system's zoneinfo.
    other = parse_vobject(data).vevent.dtstart.value
    assert parsed == other == utc
    assert other.utcoffset() == parsed.utcoffset() == timedelta(hours=offset)


def test_start_in_another_zone_is_written_in_the_conference_zone() -> None:
    start = datetime(2027, 7, 1, 7, 30, tzinfo=UTC)
    data = build([make_event(start=start, end=start + timedelta(hours=1))])
    assert "DTSTART;TZID=Europe/Berlin:20270701T093000" in unfold(data)


def test_vtimezone_has_standard_and_daylight_with_rfc_onsets() -> None:
    (tz,) = parse_icalendar(build()).walk("VTIMEZONE")
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
    lines = unfold(build())
    assert lines.count("TZOFFSETTO:+0100") == 1
    assert lines.count("TZOFFSETTO:+0200") == 1


def test_vobject_sees_standard_and_daylight() -> None:
    tz = parse_vobject(build()).vtimezone
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
        [make_event(start=start, end=start + timedelta(hours=1))],
        timezone=tzid,
        organizer=ORGANIZER,
        attendee=ATTENDEE,
        stamp=STAMP,
    )
    (vtimezone,) = parse_icalendar(data).walk("VTIMEZONE")
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
        [make_event(start=start, end=start + timedelta(hours=1))],
        timezone="Asia/Tokyo",
        organizer=ORGANIZER,
        attendee=ATTENDEE,
        stamp=STAMP,
    )
    (tz,) = parse_icalendar(data).walk("VTIMEZONE")
    assert [c.name for c in tz.subcomponents] == ["STANDARD"]
    assert parse_vobject(data).vevent.dtstart.value == datetime(2027, 7, 1, 0, 30, tzinfo=UTC)
