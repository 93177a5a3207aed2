"""Token auth and moderator rights as prosody really applies them to our join-link tokens."""

from __future__ import annotations

import pytest

from tests.prosody.clients import RefusedError
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


async def test_no_token_is_refused_at_login(lane: Lane) -> None:
    with pytest.raises(RefusedError) as refused:
        await lane.participant(lane.rooms["sprache"], token=None)
    assert (refused.value.condition, refused.value.text) == ("not-allowed", "token required")
    assert "Error verifying token err:not-allowed, reason:token required" in lane.prosody.log()


async def test_token_for_another_room_is_refused_at_the_door(lane: Lane) -> None:
    olga = await lane.enter("olga", "werte")  # an organiser: the room is running
    werte = lane.room_jid("werte")
    anna_token = await lane.token("anna", "sprache")
    anna = await lane.participant(lane.rooms["werte"], anna_token)
    with pytest.raises(RefusedError) as refused:
        await anna.join(werte, "anna")
    assert refused.value.condition == "not-allowed"
    assert "room-mismatch" in refused.value.extra  # token_verification's reason
    await olga.sync()
    assert "anna" not in olga.view(werte).occupants
    assert "not allowed to join" in lane.prosody.log()


async def test_moderator_token_makes_owner_participant_token_member(lane: Lane) -> None:
    mo = await lane.enter("mo", "sprache")
    anna = await lane.enter("anna", "sprache")
    room = lane.room_jid("sprache")
    await mo.until(room, lambda: {"mo", "anna"} <= set(mo.view(room).occupants))
    await anna.sync()
    await mo.sync()
    seen = mo.view(room).occupants
    assert (seen["mo"].affiliation, seen["mo"].role) == ("owner", "moderator")
    assert (seen["anna"].affiliation, seen["anna"].role) == ("member", "participant")
    assert anna.view(room).occupants["mo"].role == "moderator"
