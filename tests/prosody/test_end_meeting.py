"""Ending a meeting through our API ends it in prosody for everyone, and it stays closed.

Needs the end-meeting system token as prosody's muc_end_meeting checks it with the host's
token settings: HS256 with the app secret (claims iss, aud, sub, room); RS256 gets a 401.
"""

from __future__ import annotations

import pytest

from orchestrator.jitsi.client import ProsodyClient
from tests.prosody.clients import RefusedError
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


async def test_end_through_our_api_ends_it_for_everyone_and_it_stays_closed(lane: Lane) -> None:
    name, room = lane.rooms["sprache"], lane.room_jid("sprache")
    mo = await lane.enter("mo", "sprache")
    token = await lane.token("anna", "sprache")
    anna = await lane.participant(name, token)
    await anna.join(room, "anna", "Anna")

    response = await lane.api.post(f"/api/v1/rooms/{name}/end")
    assert response.status_code == 200, f"{response.text}\n{lane.prosody.log()[-2000:]}"
    assert response.json()["was_running"] is True
    await anna.until(room, lambda: anna.view(room).destroyed)
    await mo.until(room, lambda: mo.view(room).destroyed)
    async with ProsodyClient(lane.settings) as prosody:
        assert await prosody.room_size(name) == 0

    # Her token is still valid; prosody asks us before it recreates the room, and we refuse.
    back = await lane.participant(name, token)
    with pytest.raises(RefusedError) as refused:
        await back.conference(room)
    assert refused.value.extra.get("reservation-error") == "403"
    assert (await lane.api.get(f"/j/{lane.people['anna'].token}/{name}")).status_code != 302
