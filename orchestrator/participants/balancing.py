"""The forum balancer (SPEC §4.2) as a pure function: seats and wishes in, placements out.

No database here: `assignment.run_assignment` loads the rows, calls `balance` once per
breakout round and writes the placements back.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Overflow = Literal["most_room", "waitlist"]


class Outcome(StrEnum):
    """How a person was placed; except CHOICE, the values name the report's counters."""

    CHOICE = "choice"  # one of the person's choices; Placement.rank says which
    OVERFLOW = "overflow"  # no choice had room: the forum with the most free seats
    WAITLISTED = "waitlisted"
    NO_CHOICE = "no_choice"  # chose nothing: left unassigned, a reminder asks them
    KEPT = "kept"  # pinned (organiser override or self-service): kept as it is


@dataclass(frozen=True)
class Seats:  # a forum as the balancer sees it; `balance` takes them in position order
    id: int
    capacity: int


@dataclass(frozen=True)
class Candidate:
    person_id: uuid.UUID
    tiebreak: str  # the email: the draw must not depend on database ids or input order
    choices: tuple[int, ...] = ()  # forum ids, first choice first
    is_staff: bool = False  # moderators and referents run their forum


@dataclass(frozen=True)
class Placement:
    outcome: Outcome
    forum_id: int | None = None
    rank: int | None = None  # 1-based position in Candidate.choices


def lottery_key(salt: str, candidate: Candidate) -> tuple[str, str, str]:
    """The reproducible draw: sha256 of "conference-slug:email", then email, then id."""
    digest = hashlib.sha256(f"{salt}:{candidate.tiebreak}".encode()).hexdigest()
    return digest, candidate.tiebreak, str(candidate.person_id)


class _Board:
    """Free seats per forum (in position order) and the placements made so far."""

    def __init__(self, forums: Sequence[Seats], pinned: Mapping[uuid.UUID, int | None]) -> None:
        self.free = {forum.id: forum.capacity for forum in forums}
        self.placed = {person: Placement(Outcome.KEPT, forum) for person, forum in pinned.items()}
        for forum_id in pinned.values():
            if forum_id in self.free:
                self.free[forum_id] -= 1  # may go below zero: an organiser overbooked

    def waiting(self, queue: Iterable[Candidate]) -> list[Candidate]:
        return [candidate for candidate in queue if candidate.person_id not in self.placed]

    def try_choice(self, candidate: Candidate, rank: int) -> None:
        forum_id = candidate.choices[rank - 1]
        if self.free.get(forum_id, 0) > 0:
            self.seat(candidate, Placement(Outcome.CHOICE, forum_id, rank))

    def seat(self, candidate: Candidate, placement: Placement) -> None:
        if placement.forum_id is not None:
            self.free[placement.forum_id] -= 1
        self.placed[candidate.person_id] = placement

    def most_room(self) -> int | None:
        # max() keeps the first of equals, so ties go to the earlier forum position.
        forum_id = max(self.free, key=self.free.__getitem__, default=None)
        return forum_id if forum_id is not None and self.free[forum_id] > 0 else None


def _overflow_round(board: _Board, queue: list[Candidate], overflow: Overflow) -> None:
    for candidate in board.waiting(queue):
        if not candidate.choices:
            board.seat(candidate, Placement(Outcome.NO_CHOICE))
            continue
        forum_id = board.most_room() if overflow == "most_room" else None
        if forum_id is None:
            board.seat(candidate, Placement(Outcome.WAITLISTED))
        else:
            board.seat(candidate, Placement(Outcome.OVERFLOW, forum_id))


def balance(
    forums: Sequence[Seats],
    candidates: Iterable[Candidate],
    *,
    salt: str,
    pinned: Mapping[uuid.UUID, int | None] | None = None,
    overflow: Overflow = "most_room",
) -> dict[uuid.UUID, Placement]:
    """Pinned kept, then staff, all 1st choices, 2nd, ..., overflow; one Placement each."""
    board = _Board(forums, pinned or {})
    queue = sorted(candidates, key=lambda candidate: lottery_key(salt, candidate))
    for candidate in board.waiting(queue):
        if candidate.is_staff and candidate.choices:
            board.try_choice(candidate, 1)
    for rank in range(1, max((len(c.choices) for c in queue), default=0) + 1):
        for candidate in board.waiting(queue):
            if len(candidate.choices) >= rank:
                board.try_choice(candidate, rank)
    _overflow_round(board, queue, overflow)
    return board.placed
