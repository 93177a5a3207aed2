"""event_sync webhooks over real HTTP: stored raw, folded into presence intervals to the second.

Payloads come from `tests.event_sync`, built as jitsi-contrib's mod_event_sync_component.lua
builds them; the app runs under uvicorn on loopback with the event writer (and, where a test
says so, the background folder). Times are the sample conference's: forums 10:00-11:30 UTC.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.attendance.models import JitsiEvent, PresenceInterval
from orchestrator.attendance.presence import ClosedBy, Stay, fold, live_occupancy, refold_since
from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Conference
from orchestrator.conferences.service import plenary_room
from orchestrator.config import Settings
from orchestrator.participants.models import Person
from orchestrator.web.app import create_app
from tests.conftest import load_sample
from tests.event_sync import (
    DAY,
    EventSync,
    Interval,
    Payload,
    Room,
    Site,
    at,
    breakout_day,
    epoch,
    eventually,
    forum_day,
    hms,
    new_jid,
    user,
)
from tests.fake_prosody import FakeProsody
from tests.live import serve


@pytest_asyncio.fixture
async def site(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Site]:
    async with sessions() as session:
        conference = await load_sample(session)
        people = [Person(conference_id=conference.id, email=f"p{n}@example.org") for n in range(3)]
        session.add_all(people)
        await session.commit()
        plenary = plenary_room(conference.sessions[0])
        forum = conference.forums[0].room
        assert plenary is not None and forum is not None
        names = (plenary.name, forum.name, forum.id, [str(person.id) for person in people])
    clock = FrozenClock(DAY.replace(hour=10, minute=30))
    quiet = {"attendance_fold_seconds": None, "attendance_census_seconds": None}
    app = create_app(settings.model_copy(update=quiet), clock=clock)
    async with (
        serve(app) as base_url,
        EventSync(f"{base_url}/jitsi", settings.jitsi_webhook_secret) as sync,
    ):
        yield Site(sync, sessions, settings, clock, conference.id, *names)


def expected_day(site: Site) -> list[Interval]:
    spans = [("10:00:10", "11:20:00"), ("10:00:20", "10:45:30"), ("10:05:00", "11:29:59")]
    return sorted((p, p, *span, "left", False) for p, span in zip(site.people, spans, strict=True))


@pytest.mark.asyncio
async def test_normal_forum_gives_intervals_to_the_second(site: Site) -> None:
    events = forum_day(site.forum, site.people)
    await site.send(events)
    assert await site.stored() == len(events)
    assert await site.fold() == len(events)
    assert await site.intervals(site.forum) == expected_day(site)
    async with site.sessions() as session:
        rows = (await session.scalars(select(PresenceInterval))).all()
    assert {(r.room_id, r.conference_id) for r in rows} == {(site.forum_id, site.conference_id)}
    assert sorted(row.display_name for row in rows) == ["P0", "P1", "P2"]
    assert await site.fold() == 0  # every event processed: nothing pending
    assert await site.intervals(site.forum) == expected_day(site)


@pytest.mark.asyncio
async def test_reloads_merge_below_the_gap_and_not_above(site: Site) -> None:
    async with site.sessions() as session:  # the conference's rule: merge below 60 s
        await session.execute(update(Conference).values(rejoin_gap_seconds=60))
        await session.commit()
    room = Room(site.forum, at("10:00:00"))
    p0, p1, _ = site.people
    a1, a2, a3, b1, b2 = (new_jid() for _ in range(5))
    events = [
        room.created(),
        room.join(a1, at("10:01:00"), user(p0, "P0")),
        room.leave(a1, at("10:10:00")),
        room.join(a2, at("10:10:59"), user(p0, "P0")),  # reload: 59 s < 60 s
        room.leave(a2, at("10:30:00")),
        room.join(a3, at("10:30:05"), user(p0, "P0")),  # 5 s
        room.leave(a3, at("10:40:00")),
        room.join(b1, at("10:01:00"), user(p1, "P1")),
        room.leave(b1, at("10:10:00")),
        room.join(b2, at("10:11:00"), user(p1, "P1")),  # exactly 60 s: not below the gap
        room.leave(b2, at("10:20:00")),
    ]
    await site.send(events)
    await site.fold()
    assert await site.intervals(site.forum) == sorted(
        [
            (p0, p0, "10:01:00", "10:40:00", "left", False),
            (p1, p1, "10:01:00", "10:10:00", "left", False),
            (p1, p1, "10:11:00", "10:20:00", "left", False),
        ]
    )


@pytest.mark.asyncio
async def test_duplicates_store_one_row_and_change_nothing(site: Site) -> None:
    events = forum_day(site.forum, site.people)
    await site.send(events)
    await site.fold()
    await site.send(events[::-1] + events[2:5])  # event_sync retried them all
    assert await site.stored() == len(events)
    reordered = [json.loads(json.dumps(event, sort_keys=True)) for event in events[:3]]
    await site.send(reordered)  # same content, keys in another order: the same event
    assert await site.stored() == len(events)
    await site.fold()
    assert await site.intervals(site.forum) == expected_day(site)


@pytest.mark.asyncio
async def test_shuffled_order_gives_the_in_order_result(site: Site) -> None:
    in_order = forum_day(site.plenary, site.people)
    await site.send(in_order)
    await site.fold()
    shuffled = forum_day(site.forum, site.people)
    random.Random(7).shuffle(shuffled)
    await site.send(shuffled[:4], concurrency=4)
    await site.fold()  # folded half-way: the rest must still fold to the same result
    await site.send(shuffled[4:], concurrency=4)
    await site.fold()
    plenary, forum = await site.intervals(site.plenary), await site.intervals(site.forum)
    assert forum == plenary == expected_day(site)


@pytest.mark.asyncio
async def test_missing_left_is_healed_by_room_destroyed(site: Site) -> None:
    room = Room(site.forum, at("10:00:00"))
    p0 = site.people[0]
    a, b = new_jid(), new_jid()
    first = [room.created(), room.join(a, at("10:02:00"), user(p0)), room.join(b, at("10:03:00"))]
    await site.send(first)
    await site.fold()
    async with site.sessions() as session:
        live = await live_occupancy(session, site.conference_id)
    assert sorted(o.occupant_key for o in live[site.forum]) == sorted([p0, f"jid:{b}"])
    room.leave(a, at("10:50:00"))  # this occupant/left was dropped by event_sync
    room.leave(b, at("10:51:00"))  # so was this one
    await site.send([room.destroyed(at("10:51:00"))])
    await site.fold()
    assert await site.intervals(site.forum) == sorted(
        [
            (p0, p0, "10:02:00", "10:50:00", "room_destroyed", False),
            (f"jid:{b}", None, "10:03:00", "10:51:00", "room_destroyed", False),
        ]
    )
    async with site.sessions() as session:
        assert await live_occupancy(session, site.conference_id) == {}


@pytest.mark.asyncio
async def test_open_stay_is_closed_at_the_rooms_end(site: Site) -> None:
    room = Room(site.forum, at("10:00:00"))
    p0 = site.people[0]
    await site.send([room.created(), room.join(new_jid(), at("10:04:00"), user(p0))])
    await site.fold()
    assert await site.intervals(site.forum) == [(p0, p0, "10:04:00", None, None, False)]
    site.clock.set(DAY.replace(hour=11, minute=45))  # forum ends 11:30, +15 min close_after
    await site.fold()
    assert await site.intervals(site.forum) == [(p0, p0, "10:04:00", "11:45:00", "room_end", False)]


@pytest.mark.asyncio
async def test_breakout_events_count_for_the_forum_room(site: Site) -> None:
    p0 = site.people[0]
    await site.send(breakout_day(site.forum, user(p0, "P0")))
    await site.fold()
    assert await site.intervals(site.forum) == [
        (p0, p0, "10:01:00", "10:20:00", "left", False),
        (p0, p0, "10:20:00", "10:50:00", "left", True),
        (p0, p0, "10:50:01", "11:25:00", "left", False),
    ]
    async with site.sessions() as session:
        assert set(await session.scalars(select(PresenceInterval.room_id))) == {site.forum_id}


@pytest.mark.asyncio
async def test_unknown_and_missing_ids_are_kept_as_anonymous_presence(site: Site) -> None:
    room = Room(site.forum, at("10:00:00"))
    stranger = "4d0f8f8e-2b7e-4c55-8a43-3c1e0d9b7a21"  # a UUID, but none of our people
    guest, system, other = new_jid(), new_jid(), new_jid()
    events = [
        room.created(),
        room.join(guest, at("10:01:00")),  # a token without context.user
        room.join(system, at("10:02:00"), user("raumsystem-saal-1", "Sitzungssaal 1")),
        room.join(other, at("10:03:00"), user(stranger, "Fremd")),
        room.leave(guest, at("10:30:00")),
    ]
    await site.send(events)
    await site.fold()
    assert await site.intervals(site.forum) == [  # by occupant key
        (stranger, None, "10:03:00", None, None, False),
        (f"jid:{guest}", None, "10:01:00", "10:30:00", "left", False),
        ("raumsystem-saal-1", None, "10:02:00", None, None, False),
    ]
    unknown = Room("kein-raum-von-uns", at("10:00:00"))
    await site.send([unknown.created(), unknown.join(new_jid(), at("10:05:00"), user("x"))])
    await site.fold()
    where = PresenceInterval.room_name == "kein-raum-von-uns"
    async with site.sessions() as session:
        row = await session.scalar(select(PresenceInterval).where(where))
    assert row is not None and (row.room_id, row.conference_id, row.person_id) == (None, None, None)


@pytest.mark.asyncio
async def test_bad_or_missing_secret_is_refused_and_nothing_stored(site: Site) -> None:
    event = Room(site.forum, at("10:00:00")).created()
    for secret in ("wrong-secret", None):
        async with EventSync(site.sync.api_prefix, secret) as stranger:
            delivery = await stranger.send(event)
        assert (delivery.status, delivery.attempts) == (401, 1)  # a 4xx is not retried
    assert await site.stored() == 0


@pytest.mark.asyncio
async def test_malformed_or_misshapen_events_are_refused_and_nothing_stored(site: Site) -> None:
    room = Room(site.forum, at("10:00:00"))
    joined = room.join(new_jid(), at("10:01:00"), user(site.people[0]))
    no_occupant = {k: v for k, v in joined.items() if k != "occupant"}
    text_time = {**joined, "occupant": {**joined["occupant"], "joined_at": "10:01"}}
    bad_breakout = {**room.created(), "is_breakout": True}
    cases = [
        ("/events/occupant/joined", b'{"event_name": "muc-occupant-joined",', 400),
        ("/events/occupant/joined", b"", 400),
        ("/events/occupant/joined", b'{"a": NaN}', 400),
        ("/events/occupant/joined", b"[]", 422),
        ("/events/occupant/joined", json.dumps(no_occupant).encode(), 422),
        ("/events/occupant/joined", json.dumps(text_time).encode(), 422),
        ("/events/occupant/left", json.dumps(joined).encode(), 422),  # wrong path, no left_at
        ("/events/room/created", json.dumps(bad_breakout).encode(), 422),
        ("/events/occupant/joined", json.dumps(joined)[:-1].encode() + b', "x": "\\ud800"}', 422),
    ]
    for path, body, status in cases:
        response = await site.sync.post_body(path, body)
        assert response.status_code == status, (path, body, response.text)
    assert await site.stored() == 0
    detail = (await site.sync.post_body(*cases[4][:2])).json()
    assert detail["code"] == "invalid_event" and detail["details"][0]["loc"] == ["occupant"]


@pytest.mark.asyncio
async def test_extra_fields_and_lua_empty_tables_are_accepted_and_kept(site: Site) -> None:
    room = Room(site.forum, at("10:00:00"))
    jid = new_jid()
    joined = room.join(jid, at("10:01:00"), user(site.people[0], "P0"))
    joined["occupant"].update(avatar="https://example.org/a.png", moderator="true")
    left = room.leave(jid, at("10:09:00"), speaker_ms=123_456)
    empty = Room(site.plenary, at("10:00:00")).destroyed(at("10:00:05"))
    assert empty["all_occupants"] == {}
    await site.send([room.created(), joined, left, empty])
    where = JitsiEvent.event_name == "muc-occupant-joined"
    async with site.sessions() as session:
        assert await session.scalar(select(JitsiEvent.payload).where(where)) == joined
    await site.fold()
    assert len(await site.intervals(site.forum)) == 1


@pytest.mark.asyncio
async def test_live_occupancy_follows_the_stream(site: Site) -> None:
    site.clock.set(DAY.replace(hour=9, minute=59))  # the opening's room is open until 10:00
    plenary, forum = Room(site.plenary, at("09:00:00")), Room(site.forum, at("09:45:00"))
    p0, p1, p2 = site.people
    jids = [new_jid() for _ in range(4)]
    first = [plenary.created(), plenary.join(jids[0], at("09:00:00"), user(p0, "P0"))]
    first += [plenary.join(jids[1], at("09:00:00"), user(p1, "P1")), forum.created()]
    first += [plenary.leave(jids[0], at("09:50:00"))]
    await site.send([*first, forum.join(jids[2], at("09:50:30"), user(p0, "P0"))])
    await site.send([forum.join(jids[3], at("09:51:00"), user(p2, "P2"))])
    await site.fold()
    async with site.sessions() as session:
        live = await live_occupancy(session, site.conference_id)
    assert {room: [o.display_name for o in people] for room, people in live.items()} == {
        site.plenary: ["P1"],
        site.forum: ["P0", "P2"],
    }
    assert live[site.forum][0].person_id is not None
    assert live[site.forum][0].joined_at == DAY.replace(hour=9, minute=50, second=30)


@pytest.mark.asyncio
async def test_background_folder_and_census_check_run_with_the_app(
    site: Site, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    prosody = FakeProsody()
    prosody.add_room(site.forum, [{"jid": "x", "email": "", "display_name": "P0"}] * 2)
    async with serve(prosody.app()) as prosody_url:
        settings.jitsi_prosody_url = prosody_url
        timing = {"attendance_fold_seconds": 60.0, "attendance_census_seconds": 0.05}
        app = create_app(settings.model_copy(update=timing), clock=site.clock)  # folds if woken
        with caplog.at_level(logging.INFO, logger="orchestrator.attendance"):
            async with (
                serve(app) as base_url,
                EventSync(f"{base_url}/jitsi", settings.jitsi_webhook_secret) as sync,
            ):
                room = Room(site.forum, at("10:00:00"))
                joined = [room.created(), room.join(new_jid(), at("10:01:00"), user("a"))]
                assert [d.status for d in await sync.send_all(joined)] == [200, 200]
                await eventually(lambda: site.intervals(site.forum), lambda rows: len(rows) == 1)
                seen = await eventually(
                    lambda: _mismatches(caplog), lambda m: (site.forum, 1, 2) in m
                )
    assert {room for room, _, _ in seen} == {site.forum}  # the plenary agrees: empty in both


async def _mismatches(caplog: pytest.LogCaptureFixture) -> set[tuple[str, int, int]]:
    return {
        (record.room, record.events, record.census)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.message == "attendance.census_mismatch"
    }


# --- the fold itself, without HTTP or database ---------------------------------------------


def folded_in_batches(events: list[Payload], cuts: list[int], gap: timedelta) -> list[Stay]:
    """As fold_pending folds: keep the stays before `since`, fold the visits from it again."""
    stored: list[Stay] = []
    for done, cut in zip([0, *cuts], cuts, strict=False):
        starts = [e["occupant"]["joined_at"] for e in events[done:cut] if "occupant" in e]
        starts += [o["joined_at"] for e in events[done:cut] for o in e.get("all_occupants") or []]
        spans = [(epoch(s.joined_at), epoch(s.left_at)) for s in stored]
        since = refold_since(spans, min(starts, default=None), int(gap.total_seconds()))
        if since is not None:
            kept = [stay for stay in stored if epoch(stay.joined_at) < since]
            stored = kept + fold("me", events[:cut], gap, None, since=since)
    return sorted(stored, key=lambda stay: (stay.joined_at, stay.via_breakout))


def test_fold_gives_one_answer_for_any_order_repetition_and_batching() -> None:
    events, gap = breakout_day("forum", user("me", "Me")), timedelta(seconds=120)
    expected = fold("me", events, gap, None)
    assert [(hms(s.joined_at), hms(s.left_at), s.via_breakout) for s in expected] == [
        ("10:01:00", "10:20:00", False),
        ("10:20:00", "10:50:00", True),
        ("10:50:01", "11:25:00", False),
    ]
    shuffler = random.Random(3)
    for _ in range(300):
        mixed = events + shuffler.sample(events, 5)
        shuffler.shuffle(mixed)
        cuts = sorted(shuffler.sample(range(1, len(mixed)), shuffler.randint(0, 5)))
        assert folded_in_batches(mixed, [*cuts, len(mixed)], gap) == expected


def test_fold_heals_a_lost_left_from_destroyed_at_when_all_occupants_lacks_it() -> None:
    room, later = Room("forum", at("10:00:00")), Room("forum", at("11:00:00"))
    joined = room.join(new_jid(), at("10:01:00"), user("me"))
    destroyed = {**room.destroyed(at("10:40:00")), "all_occupants": {}}
    again = later.join(new_jid(), at("11:00:00"), user("me"))
    stays = fold("me", [joined, destroyed, again], timedelta(seconds=120), None)
    assert [(hms(s.joined_at), hms(s.left_at), s.closed_by) for s in stays] == [
        ("10:01:00", "10:40:00", ClosedBy.ROOM_DESTROYED),
        ("11:00:00", None, None),
    ]
