"""The balancing algorithm alone (no database): capacity, fairness, determinism."""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

from orchestrator.participants.assignment import (
    Candidate,
    Outcome,
    Overflow,
    Placement,
    Seats,
    balance,
)

SLUG = "ik-heinsberg-2027"
Pins = dict[uuid.UUID, int | None]


def person(email: str, *choices: int, staff: bool = False) -> Candidate:
    return Candidate(uuid.uuid5(uuid.NAMESPACE_URL, email), email, choices, staff)


def lottery_order(people: list[Candidate], salt: str) -> list[Candidate]:
    return sorted(people, key=lambda c: hashlib.sha256(f"{salt}:{c.tiebreak}".encode()).digest())


def forum_of(result: Mapping[uuid.UUID, Placement], candidate: Candidate) -> int | None:
    return result[candidate.person_id].forum_id


# --- the pure algorithm ------------------------------------------------------------------


def random_instance(seed: int) -> tuple[list[Seats], list[Candidate], Pins]:
    rnd = random.Random(seed)
    forums = [Seats(100 + i, rnd.randint(0, 8)) for i in range(rnd.randint(1, 6))]
    ids = [forum.id for forum in forums]
    people = [
        person(
            f"p{i}@example.org",
            *rnd.sample(ids, rnd.randint(0, min(5, len(ids)))),
            staff=rnd.random() < 0.15,
        )
        for i in range(rnd.randint(0, 45))
    ]
    places: list[int | None] = [*ids, None]
    pinned = {c.person_id: rnd.choice(places) for c in people if rnd.random() < 0.1}
    for i in range(rnd.randint(0, 3)):  # organisers: pinned, but not balanced
        pinned[uuid.uuid5(uuid.NAMESPACE_URL, f"org{seed}-{i}")] = rnd.choice(places)
    return forums, people, pinned


def free_seats(forums: Sequence[Seats], result: Mapping[uuid.UUID, Placement]) -> dict[int, int]:
    taken = Counter(placement.forum_id for placement in result.values())
    return {forum.id: forum.capacity - taken[forum.id] for forum in forums}


def effective_rank(placement: Placement) -> float:
    """1, 2, ... for a choice; infinity for overflow and the waiting list."""
    return placement.rank if placement.rank is not None else math.inf


def check_invariants(
    forums: list[Seats],
    people: list[Candidate],
    pinned: Pins,
    result: Mapping[uuid.UUID, Placement],
    overflow: Overflow,
) -> None:
    assert set(result) == {c.person_id for c in people} | set(pinned)
    for person_id, forum_id in pinned.items():
        assert result[person_id] == Placement(Outcome.KEPT, forum_id)
    pinned_in = Counter(pinned.values())
    for forum in forums:
        balanced_in = sum(
            1 for p in result.values() if p.forum_id == forum.id and p.outcome is not Outcome.KEPT
        )
        assert balanced_in <= max(0, forum.capacity - pinned_in[forum.id])
    free = free_seats(forums, result)
    for candidate in (c for c in people if c.person_id not in pinned):
        placement = result[candidate.person_id]
        assert (placement.outcome is Outcome.NO_CHOICE) == (not candidate.choices)
        if placement.outcome is Outcome.CHOICE:
            assert placement.rank is not None
            assert candidate.choices[placement.rank - 1] == placement.forum_id
        better = candidate.choices[: (placement.rank or len(candidate.choices) + 1) - 1]
        assert all(free[forum_id] <= 0 for forum_id in better), "a better choice had room"
    outcomes = {placement.outcome for placement in result.values()}
    if overflow == "waitlist":
        assert Outcome.OVERFLOW not in outcomes
    elif Outcome.WAITLISTED in outcomes:
        assert all(seats <= 0 for seats in free.values()), "waitlisted while seats were free"


SEEDS = range(200)


@pytest.mark.parametrize("overflow", ["most_room", "waitlist"])
def test_random_instances_keep_every_guarantee(overflow: Overflow) -> None:
    for seed in SEEDS:
        forums, people, pinned = random_instance(seed)
        result = balance(forums, people, salt=f"conf-{seed}", pinned=pinned, overflow=overflow)
        check_invariants(forums, people, pinned, result, overflow)


def test_nobody_takes_a_seat_someone_ranked_higher_still_wanted() -> None:
    """If A got forum F at rank r (overflow: r = inf), all who ranked F above r did as well."""
    for seed in SEEDS:
        forums, people, pinned = random_instance(seed)
        result = balance(forums, people, salt="s", pinned=pinned)
        unpinned = [c for c in people if c.person_id not in pinned]
        worst: dict[int, float] = {}
        for c in unpinned:
            placement = result[c.person_id]
            if placement.forum_id is not None:
                worst[placement.forum_id] = max(
                    worst.get(placement.forum_id, 0), effective_rank(placement)
                )
        for c in unpinned:
            for rank, forum_id in enumerate(c.choices, start=1):
                if rank < worst.get(forum_id, 0):
                    assert effective_rank(result[c.person_id]) <= rank


def test_the_lottery_decides_within_a_round() -> None:
    """Among non-staff who wanted F at the same rank, those who got F drew lower keys."""
    for seed in SEEDS:
        forums, people, pinned = random_instance(seed)
        result = balance(forums, people, salt="s", pinned=pinned)
        draw = {c.person_id: hashlib.sha256(f"s:{c.tiebreak}".encode()).hexdigest() for c in people}
        peers = [c for c in people if c.person_id not in pinned and not c.is_staff]
        for winner in peers:
            won = result[winner.person_id]
            if won.outcome is not Outcome.CHOICE or won.rank is None:
                continue
            for loser in peers:
                if (
                    len(loser.choices) >= won.rank
                    and loser.choices[won.rank - 1] == won.forum_id
                    and effective_rank(result[loser.person_id]) > won.rank
                ):
                    assert draw[winner.person_id] < draw[loser.person_id]


def test_staff_get_their_first_choice_before_anyone_else() -> None:
    for seed in SEEDS:
        forums, people, pinned = random_instance(seed)
        result = balance(forums, people, salt="s", pinned=pinned)
        for staff in (c for c in people if c.is_staff and c.person_id not in pinned):
            first = staff.choices[0] if staff.choices else None
            if first is None or forum_of(result, staff) == first:
                continue
            others = [
                c for c in people if c.person_id not in pinned and forum_of(result, c) == first
            ]
            assert all(c.is_staff and result[c.person_id].rank == 1 for c in others)


def test_same_input_gives_the_same_result_in_any_order() -> None:
    for seed in range(50):
        forums, people, pinned = random_instance(seed)
        first = balance(forums, people, salt="s", pinned=pinned)
        assert balance(forums, people, salt="s", pinned=pinned) == first
        shuffled = people[:]
        random.Random(seed).shuffle(shuffled)
        assert balance(forums, shuffled, salt="s", pinned=dict(reversed(pinned.items()))) == first


def test_the_draw_ignores_database_ids() -> None:
    forums = [Seats(1, 2), Seats(2, 1)]
    people = [person(f"p{i}@example.org", 1, 2) for i in range(6)]
    renamed = [Candidate(uuid.uuid4(), c.tiebreak, c.choices) for c in people]
    first = balance(forums, people, salt="s")
    second = balance(forums, renamed, salt="s")
    assert [second[c.person_id] for c in renamed] == [first[c.person_id] for c in people]


def test_the_draw_is_sha256_of_slug_and_email() -> None:
    people = [person(f"p{i}@example.org", 1) for i in range(8)]
    result = balance([Seats(1, 1)], people, salt=SLUG, overflow="waitlist")
    winner = lottery_order(people, SLUG)[0]
    assert result[winner.person_id] == Placement(Outcome.CHOICE, 1, 1)
    assert sum(p.outcome is Outcome.WAITLISTED for p in result.values()) == 7


def test_first_choices_go_before_second_choices() -> None:
    early = [person(f"a{i}@example.org", 1, 2) for i in range(3)]
    late = [person(f"b{i}@example.org", 2, 1) for i in range(3)]
    result = balance([Seats(1, 3), Seats(2, 3)], early + late, salt="s")
    assert all(result[c.person_id] == Placement(Outcome.CHOICE, 1, 1) for c in early)
    assert all(result[c.person_id] == Placement(Outcome.CHOICE, 2, 1) for c in late)


def test_pinned_placements_are_kept_and_count_against_capacity() -> None:
    staff_room, other = Seats(1, 2), Seats(2, 10)
    guests = [person(f"g{i}@example.org", 1, 2) for i in range(5)]
    kept = person("kept@example.org", 2)
    pinned: Pins = {uuid.uuid4(): 1, kept.person_id: 1, uuid.uuid4(): None}
    result = balance([staff_room, other], [*guests, kept], salt="s", pinned=pinned)
    assert result[kept.person_id] == Placement(Outcome.KEPT, 1)
    assert all(result[g.person_id] == Placement(Outcome.CHOICE, 2, 2) for g in guests)


def test_an_overbooked_forum_simply_has_no_room() -> None:
    pinned: Pins = {uuid.uuid4(): 1 for _ in range(3)}
    guests = [person(f"g{i}@example.org", 1) for i in range(2)]
    result = balance([Seats(1, 1), Seats(2, 5)], guests, salt="s", pinned=pinned)
    assert {forum_of(result, g) for g in guests} == {2}
    assert {result[g.person_id].outcome for g in guests} == {Outcome.OVERFLOW}


def test_most_room_spreads_the_overflow_and_breaks_ties_by_position() -> None:
    guests = [person(f"g{i}@example.org", 1) for i in range(3)]
    result = balance([Seats(1, 1), Seats(2, 3), Seats(3, 3)], guests, salt="s")
    drawn = lottery_order(guests, "s")
    assert [forum_of(result, c) for c in drawn] == [1, 2, 3]
    assert [result[c.person_id].outcome for c in drawn[1:]] == [Outcome.OVERFLOW] * 2


def test_waitlist_policy_and_full_house() -> None:
    guests = [person(f"g{i}@example.org", 1) for i in range(3)]
    forums = [Seats(1, 1), Seats(2, 3)]
    waiting = balance(forums, guests, salt="s", overflow="waitlist")
    assert Counter(p.outcome for p in waiting.values()) == {
        Outcome.CHOICE: 1,
        Outcome.WAITLISTED: 2,
    }
    full = balance([Seats(1, 1), Seats(2, 1)], guests, salt="s", overflow="most_room")
    assert Counter(p.outcome for p in full.values()) == {
        Outcome.CHOICE: 1,
        Outcome.OVERFLOW: 1,
        Outcome.WAITLISTED: 1,
    }


def test_people_without_choices_are_not_overflowed() -> None:
    silent = person("silent@example.org")
    result = balance([Seats(1, 10)], [silent], salt="s")
    assert result[silent.person_id] == Placement(Outcome.NO_CHOICE)


def test_staff_fill_their_forum_but_never_beyond_it() -> None:
    guests = [person(f"g{i}@example.org", 1, 2) for i in range(10)]
    staff = [person(f"s{i}@example.org", 1, 2, staff=True) for i in range(3)]
    result = balance([Seats(1, 2), Seats(2, 20)], guests + staff, salt="s")
    assert Counter(forum_of(result, s) for s in staff) == {1: 2, 2: 1}
    assert all(forum_of(result, g) == 2 for g in guests)


# --- the database, on SQLite and PostgreSQL ----------------------------------------------
