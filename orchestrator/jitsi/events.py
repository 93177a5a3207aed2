"""event_sync payloads, as jitsi-contrib's `event_sync/mod_event_sync_component.lua` sends them.

Facts from the module (and its README):
- Four POSTs under `{api_prefix}/events/`: `room/created`, `room/destroyed`,
  `occupant/joined`, `occupant/left`, JSON with `event_name` `muc-room-created`,
  `muc-room-destroyed`, `muc-occupant-joined`, `muc-occupant-left`.
- Every payload carries `room_name`, `room_jid`, `is_breakout`, and `breakout_room_id` for a
  breakout (then `room_name`/`room_jid` name the main room).
- Timestamps are `os.time()`: integer epoch seconds.
- An occupant is `{occupant_jid, joined_at, left_at?, name?, email?, id?}`; name/email/id
  come from the JWT's context.user and are left out (Lua nil) when the token has none. With
  `include_user_info` every context.user field is copied in; with `include_speaker_stats`
  a left occupant has `total_dominant_speaker_time` (ms). Extra fields are kept.
- `all_occupants` lists each occupant JID once (a rejoin with the same JID overwrites it);
  prosody's util.json writes an empty Lua table as `{}`, so an empty list may come as `{}`.
- 2xx is success; a status >= 500 or no answer is retried (`api_retry_count` 3, 1 s apart);
  a timeout (`api_timeout` 20 s) or a 4xx drops the event.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.attendance.presence import occupant_key
from orchestrator.errors import InvalidInputError, OrchestratorError

EpochSeconds = Annotated[int, Field(ge=0, le=253_402_300_799)]  # up to 9999-12-31


class MalformedEventError(OrchestratorError):
    """The body is not JSON."""

    status_code = 400
    code = "malformed_json"


class InvalidEventError(InvalidInputError):
    """JSON, but not the shape event_sync sends for this path."""

    code = "invalid_event"


class Occupant(BaseModel):
    """One occupant connection; `occupant_jid` is new on every page load."""

    model_config = ConfigDict(extra="allow", frozen=True)

    occupant_jid: str = Field(min_length=1)
    joined_at: EpochSeconds
    left_at: EpochSeconds | None = None
    id: str | None = None
    name: str | None = None
    email: str | None = None
    total_dominant_speaker_time: int | None = None

    @property
    def key(self) -> str:
        """Our person id from the JWT, or the connection's JID when the token had none."""
        return occupant_key({"id": self.id, "occupant_jid": self.occupant_jid})


class LeftOccupant(Occupant):
    left_at: EpochSeconds


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event_name: str
    room_name: str = Field(min_length=1, max_length=200)
    room_jid: str
    is_breakout: bool
    breakout_room_id: str | None = None

    @property
    def occurred(self) -> int:
        raise NotImplementedError

    @property
    def occupant_key(self) -> str | None:
        return None

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.occurred, UTC)


class RoomCreated(_Event):
    event_name: Literal["muc-room-created"]
    created_at: EpochSeconds

    @property
    def occurred(self) -> int:
        return self.created_at


class RoomDestroyed(_Event):
    event_name: Literal["muc-room-destroyed"]
    created_at: EpochSeconds
    destroyed_at: EpochSeconds
    all_occupants: list[Occupant]

    @field_validator("all_occupants", mode="before")
    @classmethod
    def _empty_lua_table(cls, value: Any) -> Any:
        return [] if value == {} else value

    @property
    def occurred(self) -> int:
        return self.destroyed_at


class OccupantJoined(_Event):
    event_name: Literal["muc-occupant-joined"]
    active_occupants_count: int
    occupant: Occupant

    @property
    def occurred(self) -> int:
        return self.occupant.joined_at

    @property
    def occupant_key(self) -> str | None:
        return self.occupant.key


class OccupantLeft(_Event):
    event_name: Literal["muc-occupant-left"]
    active_occupants_count: int
    occupant: LeftOccupant

    @property
    def occurred(self) -> int:
        return self.occupant.left_at

    @property
    def occupant_key(self) -> str | None:
        return self.occupant.key


EventPayload = RoomCreated | RoomDestroyed | OccupantJoined | OccupantLeft


def canonical(payload: Any) -> bytes:
    """The payload as canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(payload: Any) -> str:
    """sha256 of the canonical JSON: a retried identical event has the same digest."""
    return hashlib.sha256(canonical(payload)).hexdigest()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Parsed(NamedTuple):
    raw: dict[str, Any]  # the JSON object as received: what is stored
    event: EventPayload
    digest: str


def parse(kind: type[EventPayload], body: bytes) -> Parsed:
    """The raw JSON object, its model and digest; 400 for non-JSON, 422 for a wrong shape."""
    try:
        raw = json.loads(body, parse_constant=_reject_constant)
    except ValueError as error:
        raise MalformedEventError(f"Kein gültiges JSON: {error}") from None
    if not isinstance(raw, dict):
        raise InvalidEventError("Ein JSON-Objekt wird erwartet.")
    try:
        text = canonical(raw)
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: no text we can store
        raise InvalidEventError("Text, der kein gültiges Unicode ist.") from None
    try:
        event = kind.model_validate(raw)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False, include_context=False)
        raise InvalidEventError("Unbekanntes Ereignisformat.", details=details) from None
    if event.is_breakout and not event.breakout_room_id:
        raise InvalidEventError("breakout_room_id fehlt bei is_breakout.")
    return Parsed(raw, event, hashlib.sha256(text).hexdigest())
