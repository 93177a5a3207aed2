"""The plenary's lobby (room template `lobby = true`, reservation answer `lobby`): the
moderator's token passes it (contrib's token_lobby_bypass with context.user.lobby_bypass),
a participant waits in it until admitted."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.prosody.clients import MUC_USER_NS, RefusedError
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


async def test_moderator_enters_the_plenary_participant_waits_in_the_lobby(lane: Lane) -> None:
    opening = lane.room_jid("opening")
    rita = await lane.enter("rita", "opening")  # a referent moderates the plenary
    me = rita.view(opening).occupants["rita"]
    assert (me.affiliation, me.role) == ("owner", "moderator")
    assert f"Enabling lobby for room {opening}" in lane.prosody.log()

    anna = await lane.participant(lane.rooms["opening"], await lane.token("anna", "opening"))
    with pytest.raises(RefusedError) as refused:
        await anna.join(opening, "anna", "Anna")
    assert refused.value.condition == "registration-required"
    lobby = refused.value.extra["lobbyroom"]
    assert lobby.endswith(f"@lobby.{lane.env.domain}")
    await anna.enter(lobby, "anna", "Anna")  # she waits there
    await rita.sync()
    assert "anna" not in rita.view(opening).occupants

    # The moderator admits her (an invite, as the web client's "admit" does).
    admit = rita.make_message(mto=opening)
    x = ET.SubElement(admit.xml, f"{{{MUC_USER_NS}}}x")
    ET.SubElement(x, f"{{{MUC_USER_NS}}}invite", {"to": anna.boundjid.full})
    rita.send(admit)
    await rita.json_message(lambda m: m.get("event") == "LOBBY-ACCESS-GRANTED")
    await anna.leave(lobby, "anna")
    admitted = await anna.enter(opening, "anna", "Anna")
    assert (admitted.affiliation, admitted.role) == ("member", "participant")
