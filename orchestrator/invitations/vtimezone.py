"""VTIMEZONE components built from zoneinfo (RFC 5545 3.6.5).

Built here rather than with icalendar's ``Timezone.from_tzid``: icalendar 7.3 writes the
spring onset as the wall clock *after* the change (DTSTART:...T030000 with
TZOFFSETFROM:+0100), whereas RFC 5545 3.6.5 reads it in TZOFFSETFROM (...T020000), and it
lists every onset as a separate date where clients (Outlook) expect a yearly RRULE. The
components are still icalendar's, and so is their serialisation.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard, vRecur


@dataclass(frozen=True)
class _State:
    offset: timedelta
    name: str
    dst: bool


@dataclass(frozen=True)
class _Transition:
    onset: datetime  # naive wall clock in the offset *before* the change (RFC 5545 3.6.5)
    before: _State
    after: _State


def vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for tzid, exact for every instant after first_year's transitions."""
    zone = ZoneInfo(tzid)
    groups = _by_change(_transitions(tzid, first_year, last_year))
    vtimezone = Timezone()
    vtimezone.add("tzid", tzid)
    years = range(first_year, last_year + 1)
    regular = all(_yearly_byday(group, years) for group in groups.values())
    if not regular or not groups:
        start = datetime(first_year, 1, 1)
        initial = _state(zone, start.replace(tzinfo=zone).astimezone(UTC))
        vtimezone.add_component(_observance(initial, initial, start, [], None))
    for (before, after), group in groups.items():
        byday = _yearly_byday(group, years) if regular else None
        onsets = [t.onset for t in group]
        rdates = [] if byday else onsets[1:]
        vtimezone.add_component(_observance(before, after, onsets[0], rdates, byday))
    return vtimezone


def _by_change(
    transitions: Sequence[_Transition],
) -> dict[tuple[_State, _State], list[_Transition]]:
    """Transitions grouped by (state before, state after), in order of first onset."""
    groups: dict[tuple[_State, _State], list[_Transition]] = {}
    for transition in transitions:
        groups.setdefault((transition.before, transition.after), []).append(transition)
    return groups


def _observance(
    before: _State,
    after: _State,
    onset: datetime,
    rdates: list[datetime],
    byday: tuple[int, str] | None,
) -> TimezoneStandard | TimezoneDaylight:
    """One STANDARD or DAYLIGHT sub-component, with a yearly RRULE or RDATEs."""
    observance = TimezoneDaylight() if after.dst else TimezoneStandard()
    observance.add("dtstart", onset)
    observance.add("tzoffsetfrom", before.offset)
    observance.add("tzoffsetto", after.offset)
    observance.add("tzname", after.name)
    if byday is not None:
        month, day = byday
        observance.add("rrule", vRecur(freq="YEARLY", bymonth=month, byday=day))
    for rdate in rdates:
        observance.add("rdate", rdate)
    return observance


def _yearly_byday(group: list[_Transition], years: range) -> tuple[int, str] | None:
    """(BYMONTH, BYDAY) if the onsets recur in every year on one weekday rule, else None."""
    onsets = [t.onset for t in group]
    first = onsets[0]
    same = [(o.year, o.month, o.time(), o.weekday()) for o in onsets] == [
        (year, first.month, first.time(), first.weekday()) for year in years
    ]
    if not same:
        return None
    weekday = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[first.weekday()]
    if all(o.day + 7 > _calendar.monthrange(o.year, o.month)[1] for o in onsets):
        return first.month, f"-1{weekday}"
    nths = {(o.day - 1) // 7 + 1 for o in onsets}
    return (first.month, f"{nths.pop()}{weekday}") if len(nths) == 1 else None


@lru_cache(maxsize=64)
def _transitions(tzid: str, first_year: int, last_year: int) -> tuple[_Transition, ...]:
    """Every change of UTC offset or zone name between the given years, to the second."""
    zone = ZoneInfo(tzid)
    moment = datetime(first_year, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=zone).astimezone(UTC)
    found: list[_Transition] = []
    while moment < end:
        step = min(moment + timedelta(hours=6), end)
        before, after = _state(zone, moment), _state(zone, step)
        if before != after:
            instant = _bisect(zone, moment, step)
            onset = (instant + before.offset).replace(tzinfo=None)
            found.append(_Transition(onset, before, _state(zone, instant)))
        moment = step
    return tuple(found)


def _bisect(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first second at or before ``high`` whose state differs from ``low``'s."""
    initial = _state(zone, low)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if _state(zone, middle) == initial:
            low = middle
        else:
            high = middle
    return high


def _state(zone: ZoneInfo, instant: datetime) -> _State:
    """UTC offset, abbreviation and DST flag of the zone at a UTC instant."""
    local = instant.astimezone(zone)
    offset, dst = local.utcoffset(), local.dst()
    return _State(offset or timedelta(), local.tzname() or "", bool(dst))
