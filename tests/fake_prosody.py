"""A small HTTP server that answers like prosody's muc_size, muc_census and muc_end_meeting.

It follows jitsi-meet's `resources/prosody-plugins/mod_muc_size.lua`, `mod_muc_census.lua`,
`mod_muc_end_meeting.lua` and `token/util.lib.lua` to the letter where our client can tell:
the focus is an occupant (subtracted from the counts as prosody does), empty lists are `{}`,
no JSON content type, and end-meeting checks the token as the host's token settings do
with an app secret set: HS256 with that secret (any other alg is a 401), then the claims.
The real-prosody lane (tests/prosody/) checks the same against prosody itself.
Knobs: `delay` (seconds before each answer), `failures` (answer that many requests with
`failure_status` first), `forbidden` (403 as with enable_roomsize_token_verification),
`broken` (200 with a body that is not JSON).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import FastAPI, Request, Response

FOCUS = "focus"


@dataclass
class FakeRoom:
    """A running room; `people` are the occupants besides the hidden focus."""

    people: list[dict[str, str]]
    created_ms: int | None = None
    leaked: bool = False

    def occupant_count(self) -> int:
        return len(self.people) + 1  # the focus


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]


@dataclass
class FakeProsody:
    domain: str = "meet.jitsi"
    muc_prefix: str = "muc"  # docker-jitsi-meet: muc_mapper_domain_prefix from XMPP_MUC_DOMAIN
    app_id: str = "orchestrator"  # the VirtualHost's app_id: the accepted issuer
    app_secret: str = ""  # the VirtualHost's app_secret
    rooms: dict[str, FakeRoom] = field(default_factory=dict)  # by room JID
    delay: float = 0.0
    failures: int = 0
    failure_status: int = 500
    forbidden: bool = False
    broken: bool = False
    seen: list[Seen] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)

    def room_jid(self, name: str, domain: str | None = None) -> str:
        return f"{name}@{self.muc_prefix}.{domain or self.domain}"

    def add_room(self, name: str, people: list[dict[str, str]], **kwargs: Any) -> FakeRoom:
        room = FakeRoom(people=people, **kwargs)
        self.rooms[self.room_jid(name)] = room
        return room

    def app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/room-size", self._room_size, methods=["GET"])
        app.add_api_route("/room", self._room, methods=["GET"])
        app.add_api_route("/room-census", self._census, methods=["GET"])
        app.add_api_route("/end-meeting", self._end_meeting, methods=["POST"])
        return app

    async def _trouble(self, request: Request) -> Response | None:
        """Record the request, wait, and answer with a configured failure if one is due."""
        self.seen.append(Seen(request.method, request.url.path, dict(request.query_params)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures > 0:
            self.failures -= 1
            return Response(status_code=self.failure_status)
        if self.broken:
            return Response(b"<html>Prosody</html>", status_code=200)
        return None

    async def _running_room(self, request: Request) -> Response | FakeRoom:
        """The room muc_size's room/domain query names, or prosody's refusal."""
        refusal = await self._trouble(request)
        if refusal is not None:
            return refusal
        if not request.url.query:
            return Response(status_code=400)
        if self.forbidden:
            return Response(status_code=403)
        query = request.query_params
        room = self.rooms.get(self.room_jid(query.get("room", ""), query.get("domain")))
        return Response(status_code=404) if room is None else room

    async def _room_size(self, request: Request) -> Response:
        room = await self._running_room(request)
        if isinstance(room, Response):
            return room
        count = room.occupant_count()
        count = count - 1 if count > 1 else count
        return Response(f'{{"participants":{count}}}'.encode())

    async def _room(self, request: Request) -> Response:
        room = await self._running_room(request)
        if isinstance(room, Response):
            return room
        return Response(_cjson(room.people).encode())

    async def _census(self, request: Request) -> Response:
        refusal = await self._trouble(request)
        if refusal is not None:
            return refusal
        rows = [_census_row(jid, room) for jid, room in self.rooms.items()]
        body = "[]" if not rows else json.dumps(rows, separators=(",", ":"))
        return Response(f'{{"room_census":{body}}}'.encode())

    async def _end_meeting(self, request: Request) -> Response:
        refusal = await self._trouble(request)
        if refusal is not None:
            return refusal
        conference = request.query_params.get("conference")
        if not conference:
            return Response(status_code=400)
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return Response(status_code=401)
        claims = await self._verify(authorization.removeprefix("Bearer "))
        if claims is None:
            return Response(status_code=401)
        if self.rooms.pop(conference, None) is None:
            return Response(status_code=404)
        self.ended.append(conference)
        self.claims.append(claims)
        return Response(status_code=200)

    async def _verify(self, token: str) -> dict[str, Any] | None:
        """As token/util.lib.lua with app_secret set: HS256 only, then signature and claims."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != "JWT" or not self.app_secret:
                return None
            claims: dict[str, Any] = jwt.decode(
                token, self.app_secret, algorithms=["HS256"], options={"verify_aud": False}
            )
        except jwt.InvalidTokenError:
            return None
        # accepted issuers default to {app_id}; accepted audiences to '*'; room claim required.
        if claims.get("iss") != self.app_id or "aud" not in claims or "room" not in claims:
            return None
        return claims


def _cjson(items: list[dict[str, str]]) -> str:
    """cjson encodes an empty Lua table as an object."""
    return "{}" if not items else json.dumps(items, separators=(",", ":"))


def _census_row(jid: str, room: FakeRoom) -> dict[str, Any]:
    row: dict[str, Any] = {
        "room_name": jid,
        "participants": room.occupant_count() - 1,
        "leaked": room.leaked,
    }
    if room.created_ms is not None:  # a nil field is left out of the JSON
        row["created_time"] = room.created_ms
    return row
