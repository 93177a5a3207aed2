"""One status per person and session from video stays, check-in and organisers' overrides.

The rules as a pure function (`reconcile`); `table.attendance_table` applies them to a
whole conference. Rules (SPEC §4.7), per session and person:

- covered time is the union of the person's video stays in the session's rooms (the
  plenary's room, or any forum room of the round) and of the check-in's span, clipped to
  the session's start and end; an open stay or check-in counts until `now` or the end;
- an organiser's override wins, the latest one (every override is kept as an audit trail,
  see `overrides`);
- an in-person check-in is present unless the person checked out before `present_ratio`
  of the session had passed;
- otherwise present when covered ≥ present_ratio × duration, partial when covered > 0,
  absent when nothing is covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from orchestrator.attendance.models import AttendanceStatus
from orchestrator.attendance.overrides import Decision


class Source(StrEnum):
    VIDEO = "video"
    IN_PERSON = "in_person"
    BOTH = "both"
    NONE = "none"


# A video stay in one of the session's rooms: (joined_at, left_at), left_at None while in the
# room. A plain tuple, not a NamedTuple: the garbage collector stops tracking tuples of
# datetimes, which keeps 100,000 of them cheap (full collections would walk them all).
Stay = tuple[datetime, datetime | None]


class Visit(NamedTuple):
    """An in-person check-in (left_at None: not checked out)."""

    arrived_at: datetime
    left_at: datetime | None


@dataclass(frozen=True)
class Window:
    """A session's start and end, and the moment of the reckoning."""

    starts_at: datetime
    ends_at: datetime
    now: datetime

    @property
    def counted_until(self) -> datetime:
        return min(self.ends_at, self.now)

    @property
    def duration(self) -> timedelta:
        return self.ends_at - self.starts_at


@dataclass(frozen=True)
class Rules:
    present_ratio: float = 0.75


@dataclass(frozen=True, slots=True)
class Record:
    status: AttendanceStatus
    computed_status: AttendanceStatus  # what the rules say without overrides
    covered: timedelta
    first_join: datetime | None
    last_leave: datetime | None  # None while a video stay is open, or when nothing is known
    source: Source
    reason: str | None = None  # the deciding override's reason

    @property
    def minutes(self) -> int:
        """Full minutes covered."""
        return int(self.covered.total_seconds() // 60)


def _covered(spans: Iterable[tuple[datetime, datetime]]) -> timedelta:
    """Length of the union of spans: overlaps (two rooms, reloads) are counted once."""
    total, reached = timedelta(), None
    for start, end in sorted(spans):
        begin = start if reached is None else max(start, reached)
        total += max(end - begin, timedelta())
        reached = end if reached is None else max(reached, end)
    return total


def _overlaps(stay: Stay, window: Window) -> bool:
    joined_at, left_at = stay
    return joined_at < window.ends_at and (left_at is None or left_at > window.starts_at)


def _checked_in(visit: Visit | None, window: Window, rules: Rules) -> bool:
    if visit is None or visit.arrived_at >= window.ends_at:
        return False
    threshold = window.starts_at + window.duration * rules.present_ratio
    return visit.left_at is None or visit.left_at >= threshold


def _computed(
    covered: timedelta, checked_in: bool, window: Window, rules: Rules
) -> AttendanceStatus:
    if checked_in or covered >= window.duration * rules.present_ratio:
        return AttendanceStatus.PRESENT
    return AttendanceStatus.PARTIAL if covered > timedelta() else AttendanceStatus.ABSENT


def _latest(decisions: Sequence[Decision]) -> Decision | None:
    latest: Decision | None = None
    for decision in decisions:  # in order of creation: a tie goes to the later one
        if latest is None or decision.created_at >= latest.created_at:
            latest = decision
    return latest


def _source(stays: Sequence[Stay], visit: Visit | None) -> Source:
    if stays and visit:
        return Source.BOTH
    return Source.VIDEO if stays else Source.IN_PERSON if visit else Source.NONE


def _edges(stays: Sequence[Stay], visit: Visit | None) -> tuple[datetime | None, datetime | None]:
    """First join and last leave; no last leave while a video stay is open."""
    joins = [joined_at for joined_at, _ in stays]
    leaves = [left_at for _, left_at in stays]
    if visit:
        joins.append(visit.arrived_at)
        if visit.left_at:
            leaves.append(visit.left_at)
    first = min(joins, default=None)
    if None in leaves:
        return first, None
    return first, max((leave for leave in leaves if leave is not None), default=None)


def reconcile(
    window: Window,
    stays: Iterable[Stay],
    check_in: Visit | None,
    overrides: Sequence[Decision],
    rules: Rules,
) -> Record:
    """The record of one person at one session under the conference's rules."""
    relevant = [stay for stay in stays if _overlaps(stay, window)]
    start, until, now = window.starts_at, window.counted_until, window.now
    # Clipped to the session; an open stay or check-in counts until now or the end.
    spans = [(max(joined, start), min(left or now, until)) for joined, left in relevant]
    if check_in is not None:
        spans.append((max(check_in.arrived_at, start), min(check_in.left_at or now, until)))
    covered = _covered(spans)
    computed = _computed(covered, _checked_in(check_in, window, rules), window, rules)
    decision = _latest(overrides)
    first_join, last_leave = _edges(relevant, check_in)
    return Record(
        status=decision.status if decision else computed,
        computed_status=computed,
        covered=covered,
        first_join=first_join,
        last_leave=last_leave,
        source=_source(relevant, check_in),
        reason=decision.reason if decision else None,
    )
