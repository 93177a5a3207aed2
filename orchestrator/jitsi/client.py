"""Prosody's HTTP endpoints: muc_size, muc_census and muc_end_meeting (jitsi-meet plugins).

Formats, from jitsi-meet `resources/prosody-plugins/`:
- `GET /room-size?room=NAME&domain=XMPP_DOMAIN` → `{"participants": N}` (occupants minus the
  hidden focus), 404 when no such room (`mod_muc_size.lua`). Prosody builds the room JID as
  `NAME@{muc_mapper_domain_prefix}.{domain}`.
- `GET /room?room=NAME&domain=XMPP_DOMAIN` → `[{jid, email, display_name}]`, 404 when no such
  room; an empty list comes as `{}` (cjson encodes an empty table as an object).
- `GET /room-census` → `{"room_census": [{room_name (the room JID), participants,
  created_time (epoch ms, absent until the room had two occupants), leaked}]}`
  (`mod_muc_census.lua`).
- `POST /end-meeting?conference=ROOM_JID` with `Authorization: Bearer SYSTEM_TOKEN` (HS256
  with the app secret, `tokens.system_token`) → 200 destroyed, 400 bad query, 401 bad
  token, 404 no such room (`mod_muc_end_meeting.lua`).

A room that is not running is not an error: its size is 0, it has nobody in it, and ending
it does nothing. Connection errors, timeouts and 5xx are retried with backoff; when prosody
still does not answer we raise `JitsiUnavailableError` (503) so one route fails, not the app.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from orchestrator.clock import Clock, system_clock
from orchestrator.config import Settings
from orchestrator.errors import OrchestratorError
from orchestrator.jitsi.tokens import system_token

log = logging.getLogger(__name__)
T = TypeVar("T")


class JitsiUnavailableError(OrchestratorError):
    """Prosody did not answer (refused, timed out, 5xx) after every retry."""

    status_code = 503
    code = "jitsi_unavailable"


class JitsiRequestError(OrchestratorError):
    """Prosody answered but refused the request (4xx) or in a format we do not know."""

    status_code = 502
    code = "jitsi_rejected"


class Participant(BaseModel):
    """One occupant session of a room as muc_size lists it (the focus left out)."""

    model_config = ConfigDict(frozen=True)

    jid: str
    email: str = ""
    display_name: str = ""


class RoomCensus(BaseModel):
    """One room of muc_census; `room_name` is the room's JID (name@muc-domain)."""

    model_config = ConfigDict(frozen=True)

    room_name: str
    participants: int
    created_time: datetime | None = None
    leaked: bool = False

    @field_validator("participants")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        # census subtracts the focus even from a room that has no occupant left.
        return max(value, 0)

    @field_validator("created_time", mode="before")
    @classmethod
    def _from_epoch_ms(cls, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)

    @property
    def name(self) -> str:
        """The bare room name (the JID's local part)."""
        return self.room_name.split("@", 1)[0]


_PARTICIPANTS = TypeAdapter(list[Participant])
_CENSUS = TypeAdapter(list[RoomCensus])
UNAVAILABLE = "Jitsi (Prosody) ist gerade nicht erreichbar. Bitte versuchen Sie es später erneut."


class ProsodyClient:
    """Talks to prosody's HTTP port (internal network only); one instance may be shared."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        backoff: float = 0.25,
        clock: Clock = system_clock,
        retries: int | None = None,
        quiet: bool = False,
    ) -> None:
        """`retries` overrides the setting; `quiet` logs failures at debug (callers report)."""
        self._settings = settings
        self._retries = settings.jitsi_http_retries if retries is None else retries
        self._failure_level = logging.DEBUG if quiet else logging.WARNING
        self._timeout = httpx.Timeout(settings.jitsi_http_timeout)
        self._http = http or httpx.AsyncClient(timeout=self._timeout)
        self._owns_http = http is None
        self._backoff = backoff
        self._clock = clock

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def muc_domain(self) -> str:
        return self._settings.jitsi_muc_domain or f"muc.{self._settings.jitsi_domain}"

    def room_jid(self, room: str) -> str:
        """The room's JID as prosody names it: name@muc-domain."""
        return f"{room.lower()}@{self.muc_domain}"

    async def room_size(self, room: str) -> int:
        """People in the room (focus not counted); 0 when the room is not running."""
        response = await self._request("GET", "/room-size", params=self._room_params(room))
        if response.status_code == httpx.codes.NOT_FOUND:
            return 0
        body = self._json(self._ok(response))
        if not isinstance(body, dict) or not isinstance(body.get("participants"), int):
            raise self._unexpected(response)
        return max(int(body["participants"]), 0)

    async def room_participants(self, room: str) -> list[Participant]:
        """Who is in the room (one entry per session); empty when the room is not running."""
        response = await self._request("GET", "/room", params=self._room_params(room))
        if response.status_code == httpx.codes.NOT_FOUND:
            return []
        body = self._json(self._ok(response))
        if body == {}:  # cjson's empty array
            return []
        return self._validate(_PARTICIPANTS, body, response)

    async def census(self) -> list[RoomCensus]:
        """Every running room of the MUC with its size and creation time."""
        response = self._ok(await self._request("GET", "/room-census"))
        body = self._json(response)
        if not isinstance(body, dict) or "room_census" not in body:
            raise self._unexpected(response)
        rooms = body["room_census"]
        return [] if rooms == {} else self._validate(_CENSUS, rooms, response)

    async def end_meeting(self, room: str) -> bool:
        """End the room for everyone; False when it was not running."""
        token = system_token(
            app_id=self._settings.jitsi_app_id,
            secret=self._settings.require("jitsi_app_secret"),
            domain=self._settings.jitsi_domain,
            room=room.lower(),
            now=self._clock(),
        )
        response = await self._request(
            "POST",
            "/end-meeting",
            params={"conference": self.room_jid(room)},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == httpx.codes.NOT_FOUND:
            log.info("jitsi.meeting_not_running", extra={"room": room})
            return False
        self._ok(response)
        log.info("jitsi.meeting_ended", extra={"room": room})
        return True

    def _room_params(self, room: str) -> dict[str, str]:
        return {"room": room.lower(), "domain": self._settings.jitsi_domain}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with bounded retries on connection errors, timeouts and 5xx."""
        url = f"{self._settings.jitsi_prosody_url}{path}"
        attempts = self._retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = await self._http.request(
                    method, url, params=params, headers=headers, timeout=self._timeout
                )
            except httpx.TransportError as error:
                problem = type(error).__name__
            else:
                if response.status_code < httpx.codes.INTERNAL_SERVER_ERROR:
                    return response
                problem = f"HTTP {response.status_code}"
            if attempt + 1 < attempts:
                log.info("jitsi.prosody_retry", extra={"path": path, "attempt": attempt + 1})
        log.log(
            self._failure_level,
            "jitsi.prosody_unavailable",
            extra={"path": path, "attempts": attempts, "error": problem},
        )
        raise JitsiUnavailableError(UNAVAILABLE, details={"error": problem, "attempts": attempts})

    def _ok(self, response: httpx.Response) -> httpx.Response:
        if response.status_code != httpx.codes.OK:
            path = response.request.url.path
            log.warning(
                "jitsi.prosody_rejected", extra={"path": path, "status": response.status_code}
            )
            raise JitsiRequestError(
                f"Jitsi (Prosody) hat die Anfrage {path} abgelehnt (HTTP {response.status_code}).",
                details={"status": response.status_code},
            )
        return response

    def _json(self, response: httpx.Response) -> Any:
        # Prosody sets no JSON content type; read the body as JSON regardless.
        try:
            return json.loads(response.content)
        except ValueError:
            raise self._unexpected(response) from None

    def _validate(self, adapter: TypeAdapter[T], body: Any, response: httpx.Response) -> T:
        try:
            return adapter.validate_python(body)
        except ValidationError:
            raise self._unexpected(response) from None

    def _unexpected(self, response: httpx.Response) -> JitsiRequestError:
        path = response.request.url.path
        log.warning("jitsi.prosody_unexpected_answer", extra={"path": path})
        return JitsiRequestError(f"Jitsi (Prosody) antwortete auf {path} in unbekanntem Format.")
