"""Every event_sync event prosody really sends, folded into the right person's presence in the
right forum: a reload (new connection, same person) merged, a dropped connection closed, a
move into a built-in breakout room flagged."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.attendance.models import JitsiEvent
from tests.event_sync import Interval, eventually, intervals
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


def _breakout_jid(update: dict[str, Any]) -> str:
    rooms = update.get("rooms", {}).values()
    jids = [room["jid"] for room in rooms if not room.get("isMainRoom")]
    return jids[0] if jids else ""


def _by_person(rows: list[Interval]) -> dict[str | None, list[tuple[str | None, bool]]]:
    found: dict[str | None, list[tuple[str | None, bool]]] = {}
    for _key, person, _joined, _left, closed_by, via_breakout in rows:
        found.setdefault(person, []).append((closed_by, via_breakout))
    return found


async def test_reload_drop_and_breakout_fold_into_each_persons_presence(lane: Lane) -> None:
    name, room = lane.rooms["sprache"], lane.room_jid("sprache")
    anna_id, ben_id, mo_id = (str(lane.people[label].id) for label in ("anna", "ben", "mo"))
    mo = await lane.enter("mo", "sprache")

    first = await lane.enter("anna", "sprache", nick="anna-1")
    await first.disconnect(wait=2)  # the page reloads: this connection goes ...
    await mo.until(room, lambda: "anna-1" not in mo.view(room).occupants)
    anna = await lane.enter("anna", "sprache", nick="anna-2")  # ... and a new one comes

    ben = await lane.enter("ben", "sprache")
    ben.drop()  # his network goes away without a goodbye
    await mo.until(room, lambda: "ben" not in mo.view(room).occupants)

    # The moderator opens a built-in breakout room; Anna moves into it, as the web client does.
    add = mo.make_message(mto=f"breakout.{lane.env.domain}")
    ET.SubElement(
        add.xml,
        "{jabber:client}breakout_rooms",
        {
            "type": "features/breakout-rooms/add",
            "subject": "Kleingruppe",
            "nonce": uuid.uuid4().hex,
        },
    )
    mo.send(add)
    update = await mo.json_message(lambda message: bool(_breakout_jid(message)))
    breakout = _breakout_jid(update)
    await anna.leave(room, "anna-2")
    await anna.join(breakout, "anna-2", "Anna")
    await anna.leave(breakout, "anna-2")
    await mo.leave(room, "mo")

    def complete(rows: list[Interval]) -> bool:
        people = _by_person(rows)
        return len(people.get(anna_id, [])) == 2 and all(row[3] is not None for row in rows)

    rows = await eventually(lambda: intervals(lane.sessions, name), complete, seconds=20)
    assert {row[0] for row in rows} == {anna_id, ben_id, mo_id}  # keyed by our person ids
    assert _by_person(rows) == {
        anna_id: [("left", False), ("left", True)],  # reload merged; the breakout flagged
        ben_id: [("left", False)],  # the dropped connection closed
        mo_id: [("left", False)],
    }
    # Every kind of event arrived, for the main room and its breakout, all under the forum's name.
    kinds = await eventually(lambda: _events(lane, name), lambda found: len(found) == 8, seconds=20)
    assert kinds == {
        (kind, breakout)
        for kind in ("muc-room-created", "muc-occupant-joined", "muc-occupant-left")
        for breakout in (False, True)
    } | {("muc-room-destroyed", False), ("muc-room-destroyed", True)}


async def _events(lane: Lane, room_name: str) -> set[tuple[str, bool]]:
    async with lane.sessions() as session:
        rows = await session.scalars(select(JitsiEvent).where(JitsiEvent.room_name == room_name))
        return {(row.event_name, bool(row.payload.get("is_breakout"))) for row in rows}
