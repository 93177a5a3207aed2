"""The reservation API as prosody's mod_reservations really calls it (JITSI.md, "Rooms").

The forum-empties and restart cases need reservation `id`/`conflict_id` as JSON strings of
digits: prosody on Lua 5.4 decodes a JSON number as a float and asks for /conference/1.0.
"""

from __future__ import annotations

import re

import pytest

from tests.event_sync import eventually
from tests.prosody.clients import RefusedError
from tests.prosody.lane import Lane

pytestmark = pytest.mark.asyncio


async def test_reservation_allowed_opens_the_room_with_the_templates_limit(lane: Lane) -> None:
    await lane.enter("anna", "sprache")
    room = lane.room_jid("sprache")
    [reservation] = await lane.reservations("sprache")
    assert reservation.deleted_at is None
    log = lane.prosody.log()
    assert f"Reservation created successfully for {room}" in log
    # forum.toml's max_occupants (Lua 5.4 logs the decoded JSON number as [100.0])
    assert re.search(rf"Setting max_occupants \[?100(\.0)?\]? for room {re.escape(room)}", log)


async def test_room_outside_its_window_is_refused_by_prosody(lane: Lane) -> None:
    results = lane.room_jid("results")  # the closing plenary, hours away
    anna = await lane.participant(lane.rooms["results"], lane.mint("anna", "results"))
    with pytest.raises(RefusedError) as refused:
        await anna.conference(results)
    assert refused.value.condition == "service-unavailable"
    assert refused.value.extra.get("reservation-error") == "403"
    assert "noch nicht geöffnet" in refused.value.text
    assert f"Reservation creation failed for {results} - (403)" in lane.prosody.log()
    with pytest.raises(RefusedError) as direct:  # nor can she create it herself
        await anna.enter(results, "anna")
    assert direct.value.condition == "not-allowed"
    assert await lane.reservations("results") == []


async def test_forum_that_empties_is_released_and_entered_again(lane: Lane) -> None:
    room = lane.room_jid("sprache")
    anna = await lane.enter("anna", "sprache")
    await anna.leave(room, "anna")
    # The focus leaves the empty room, prosody destroys it and DELETEs the reservation.
    released = await eventually(
        lambda: lane.reservations("sprache"),
        lambda rows: bool(rows) and rows[0].deleted_at is not None,
        seconds=10,
    )
    assert len(released) == 1
    again = await lane.enter("anna", "sprache", nick="anna-again")
    assert again.view(room).occupants["anna-again"].role == "participant"
    rows = await lane.reservations("sprache")
    assert [row.deleted_at is None for row in rows] == [False, True]


async def test_prosody_restart_mid_meeting_reuses_the_reservation(lane: Lane) -> None:
    room = lane.room_jid("sprache")
    await lane.enter("anna", "sprache")
    await lane.restart_prosody()  # crash: no DELETE, our reservation stays active
    # Her browser reconnects; prosody POSTs, we answer 409 with conflict_id, prosody GETs it.
    anna = await lane.enter("anna", "sprache", nick="anna-back")
    assert "anna-back" in anna.view(room).occupants
    [reservation] = await lane.reservations("sprache")
    assert reservation.deleted_at is None
    assert (
        f"Reservation created successfully for {room}"
        in lane.prosody.log().split("Activated service 'http'")[-1]
    )
