"""Our ProsodyClient and live view against prosody's real muc_size and muc_census."""

from __future__ import annotations

import pytest

from orchestrator.jitsi.client import ProsodyClient
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


async def test_room_size_and_census_as_prosody_counts(lane: Lane) -> None:
    name, room = lane.rooms["sprache"], lane.room_jid("sprache")
    mo = await lane.enter("mo", "sprache")
    await lane.enter("anna", "sprache")
    ben = await lane.enter("ben", "sprache")
    async with ProsodyClient(lane.settings) as prosody:
        assert await prosody.room_size(name) == 3  # the focus not counted
        assert len(await prosody.room_participants(name)) == 3
        census = {entry.name: entry for entry in await prosody.census()}
        assert census[name].participants == 3
        assert census[name].created_time is not None
        assert await prosody.room_size(lane.rooms["werte"]) == 0  # not running
        assert lane.rooms["werte"] not in census

        await ben.leave(room, "ben")
        await mo.until(room, lambda: "ben" not in mo.view(room).occupants)
        assert await prosody.room_size(name) == 2

    live = await lane.api.get(f"/api/v1/rooms/{name}/live")
    assert live.status_code == 200, live.text
    assert live.json()["participants"] == 2
    assert len(live.json()["people"]) == 2
