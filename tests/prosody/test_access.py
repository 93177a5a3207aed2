"""Token auth and moderator rights as prosody really applies them to our join-link tokens."""

from __future__ import annotations

import pytest

from tests.prosody.clients import Refused
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


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
