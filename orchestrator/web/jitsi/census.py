"""The census cross-check: prosody's muc_census against the people our events put in rooms.

It is a hint for a person to look, so it speaks only when there is something to look at:
- pending events are folded first, so an event accepted a moment ago is no mismatch;
- a room is reported only when it disagrees at two checks in a row (event_sync may still be
  delivering an event, or retrying one, at the first);
- an unreachable prosody is reported once when it becomes unreachable and once when it is
  back, not at every check, and each check asks once (the next check is the retry).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.datastructures import State

from orchestrator.attendance.current import fold_before_reading
from orchestrator.attendance.presence import Mismatch, census_check
from orchestrator.db import transaction
from orchestrator.errors import OrchestratorError
from orchestrator.jitsi.client import ProsodyClient, RoomCensus

log = logging.getLogger(__name__)


class CensusWatch:
    """What the previous check saw, so that only lasting differences are reported."""

    def __init__(self) -> None:
        self.reachable: bool | None = None  # unknown until the first answer
        self._previous: set[str] = set()

    def answered(self) -> None:
        if self.reachable is False:
            log.info("attendance.census_reachable")
        self.reachable = True

    def failed(self, error: OrchestratorError) -> None:
        if self.reachable is not False:
            log.warning("attendance.census_unreachable", extra={"error": error.code})
        self.reachable = False

    def compared(self, mismatches: Iterable[Mismatch]) -> list[Mismatch]:
        """The mismatches seen at this check and the one before; logs each as a warning."""
        current = list(mismatches)
        lasting = [item for item in current if item.room_name in self._previous]
        self._previous = {item.room_name for item in current}
        for item in lasting:
            log.warning(
                "attendance.census_mismatch",
                extra={"room": item.room_name, "events": item.from_events, "census": item.census},
            )
        return lasting


async def check_once(state: State, client: ProsodyClient, watch: CensusWatch) -> list[Mismatch]:
    """One check: ask prosody, fold what is pending, compare; the lasting mismatches."""
    try:
        census: list[RoomCensus] = await client.census()
    except OrchestratorError as error:  # unreachable or odd: the next check asks again
        watch.failed(error)
        return []
    watch.answered()
    # Waits for a fold already running: its claimed events would be missing otherwise.
    await fold_before_reading(state.sessions, state.clock, state.room_templates)
    async with transaction(state.sessions) as session:
        return watch.compared(await census_check(session, census))
