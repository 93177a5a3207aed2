"""XMPP clients of the lane: a participant as the web client connects, and a jicofo stand-in.

A participant connects over prosody's WebSocket with `?room=ROOM&token=JWT` and SASL
ANONYMOUS (mod_auth_token checks the token), asks the focus for the conference (the IQ
mod_reservations intercepts), then joins the MUC with a presence. The focus stand-in logs in
as focus@auth.DOMAIN, announces itself to the `client_proxy` component, creates (joins) the
room when asked, answers the conference IQ, and leaves a room when it has emptied, as jicofo
does. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlencode

from slixmpp import Iq, Presence
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.prosody.websocket import WebSocketClient

FOCUS_NS = "http://jitsi.org/protocol/focus"
JITMEET_NS = "http://jitsi.org/jitmeet"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
WAIT = 15.0  # seconds: every wait for prosody, the orchestrator behind it included


class RefusedError(Exception):
    """Prosody answered with an error: `condition` (e.g. not-allowed), its text and extras."""

    def __init__(self, condition: str, text: str = "", extra: dict[str, str] | None = None) -> None:
        super().__init__(f"{condition}: {text} {extra or ''}".strip())
        self.condition, self.text, self.extra = condition, text, extra or {}


def _error(stanza: ET.Element) -> RefusedError:
    error = stanza.find("{jabber:client}error")
    if error is None:
        return RefusedError("unknown")
    condition, text, extra = "unknown", "", {}
    for child in error:
        namespace, _, name = child.tag[1:].partition("}")
        if namespace == STANZAS_NS and name == "text":
            text = child.text or ""
        elif namespace == STANZAS_NS:
            condition = name
        else:
            extra[name] = child.text or child.attrib.get("error-code", "")
    for child in stanza.iter():  # <lobbyroom> sits beside <error> in the lobby's refusal
        if child.tag == f"{{{JITMEET_NS}}}lobbyroom":
            extra["lobbyroom"] = child.text or ""
    return RefusedError(condition, text, extra)


async def _ask(iq: Iq) -> Iq:
    """Send an IQ get/set and await its result (IqError, IqTimeout after WAIT)."""
    result = await iq.send(timeout=WAIT)  # type: ignore[no-untyped-call]  # slixmpp's Iq.send
    return cast(Iq, result)


@dataclass
class Occupant:
    affiliation: str
    role: str
    jid: str = ""


@dataclass
class RoomView:
    """What one client saw of one room: occupants by nick, and whether it was destroyed."""

    occupants: dict[str, Occupant] = field(default_factory=dict)
    destroyed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def _until(view: RoomView, check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            view.changed.clear()
            await view.changed.wait()


class MucClient(WebSocketClient):
    """A client that keeps a view of every room it is in, from the presences it receives."""

    def __init__(self, jid: str, password: str, url: str) -> None:
        super().__init__(jid, password, url)
        # Prosody counts the WebSocket as secure (consider_websocket_secure); slixmpp sees no TLS.
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        self.views: dict[str, RoomView] = {}
        self.json_messages: list[dict[str, Any]] = []  # Jitsi's json-message payloads, in order
        self._json_arrived = asyncio.Event()
        self._started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_auth", self._on_auth_failure)
        self.add_event_handler("failed_all_auth", self._on_auth_failed)
        self._auth_failure = RefusedError("not-authorized", "no SASL mechanism left")
        self.register_handler(
            Callback("muc presence", MatchXPath("{jabber:client}presence"), self._seen)
        )
        json_path = f"{{jabber:client}}message/{{{JITMEET_NS}}}json-message"
        self.register_handler(Callback("json message", MatchXPath(json_path), self._json))

    def _json(self, message: Any) -> None:
        element = message.xml.find(f"{{{JITMEET_NS}}}json-message")
        self.json_messages.append(json.loads(element.text or "{}"))
        self._json_arrived.set()

    async def json_message(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first json-message (received or to come, bounded) for which `check` holds."""
        async with asyncio.timeout(WAIT):
            while True:
                for payload in self.json_messages:
                    if check(payload):
                        return payload
                self._json_arrived.clear()
                await self._json_arrived.wait()

    def _on_start(self, _: object) -> None:
        if not self._started.done():
            self._started.set_result(None)

    def _on_auth_failure(self, failure: Any) -> None:
        """Prosody's SASL <failure>: its condition and text."""
        # Read the XML: slixmpp maps conditions outside RFC 6120's list to not-authorized.
        names = [child.tag.rpartition("}")[2] for child in failure.xml]
        condition = next((name for name in names if name != "text"), "not-authorized")
        self._auth_failure = RefusedError(condition, str(failure["text"]))

    def _on_auth_failed(self, _: object) -> None:
        if not self._started.done():
            self._started.set_exception(self._auth_failure)

    async def start(self) -> None:
        """Connect and log in; RefusedError when prosody refuses the login."""
        self.connect("127.0.0.1", 1)
        async with asyncio.timeout(WAIT):
            await self._started

    def view(self, room_jid: str) -> RoomView:
        return self.views.setdefault(room_jid, RoomView())

    def _seen(self, stanza: StanzaBase) -> None:
        presence = cast(Presence, stanza)
        room_jid, nick = presence["from"].bare, presence["from"].resource
        if not nick or presence["type"] == "error":
            return
        view = self.view(room_jid)
        item = presence.xml.find(f"{{{MUC_USER_NS}}}x/{{{MUC_USER_NS}}}item")
        if presence["type"] == "unavailable":
            view.occupants.pop(nick, None)
            if presence.xml.find(f"{{{MUC_USER_NS}}}x/{{{MUC_USER_NS}}}destroy") is not None:
                view.destroyed = True
        elif item is not None:
            attributes = item.attrib
            view.occupants[nick] = Occupant(
                attributes.get("affiliation", ""),
                attributes.get("role", ""),
                attributes.get("jid", ""),
            )
        view.changed.set()

    async def enter(self, room_jid: str, nick: str, name: str = "") -> Occupant:
        """Join the MUC room; our own occupant as prosody first shows it, or RefusedError."""
        self.view(room_jid).destroyed = False
        presence = self.make_presence(pto=f"{room_jid}/{nick}")
        presence.append(ET.Element(f"{{{MUC_NS}}}x"))
        display = ET.Element("{http://jabber.org/protocol/nick}nick")
        display.text = name or nick
        presence.append(display)
        answer: asyncio.Future[Presence] = asyncio.get_running_loop().create_future()

        def match(stanza: StanzaBase) -> None:
            own = stanza["from"].full == f"{room_jid}/{nick}"
            if own and not answer.done() and stanza["type"] in {"error", "available", ""}:
                answer.set_result(cast(Presence, stanza))

        handler = f"join {room_jid}/{nick} {uuid.uuid4()}"
        self.register_handler(Callback(handler, MatchXPath("{jabber:client}presence"), match))
        try:
            self.send(presence)
            async with asyncio.timeout(WAIT):
                result = await answer
        finally:
            self.remove_handler(handler)
        if result["type"] == "error":
            raise _error(result.xml)
        await self.sync()
        return self.view(room_jid).occupants[nick]

    async def leave(self, room_jid: str, nick: str) -> None:
        self.send(self.make_presence(pto=f"{room_jid}/{nick}", ptype="unavailable"))
        await _until(self.view(room_jid), lambda: nick not in self.view(room_jid).occupants)

    async def sync(self) -> None:
        """A round trip to the server: everything it sent us before has arrived."""
        ping = self.make_iq_get(ito=self.boundjid.domain)
        ping.append(ET.Element("{urn:xmpp:ping}ping"))
        await _ask(ping)

    def drop(self) -> None:
        """The connection dies without a goodbye (network lost, tab killed)."""
        if self.transport is not None:
            self.transport.abort()

    async def until(self, room_jid: str, check: Callable[[], bool]) -> None:
        """Wait (bounded) until `check()` holds for what this client saw of the room."""
        await _until(self.view(room_jid), check)


class Participant(MucClient):
    """A browser's connection: anonymous login with the token from our join redirect."""

    def __init__(self, websocket_url: str, domain: str, room: str, token: str | None) -> None:
        query = {"room": room, **({"token": token} if token is not None else {})}
        super().__init__(domain, "", f"{websocket_url}?{urlencode(query)}")

    async def conference(self, room_jid: str) -> ET.Element:
        """Ask the focus for the conference as the web client does; RefusedError with the reason."""
        iq = self.make_iq_set(ito=f"focus.{self.boundjid.domain}")
        request = ET.Element(
            f"{{{FOCUS_NS}}}conference", {"room": room_jid, "machine-uid": uuid.uuid4().hex}
        )
        iq.append(request)
        try:
            result = await _ask(iq)
        except IqError as error:
            raise _error(error.iq.xml) from None
        except IqTimeout:
            raise RefusedError("timeout", "no answer to the conference IQ") from None
        answer: ET.Element | None = result.xml.find(f"{{{FOCUS_NS}}}conference")
        assert answer is not None and answer.get("ready") == "true", result
        return answer

    async def join(self, room_jid: str, nick: str, name: str = "") -> Occupant:
        """Conference IQ, then the MUC join: what the web client does to enter a meeting."""
        await self.conference(room_jid)
        return await self.enter(room_jid, nick, name)


class Focus(MucClient):
    """jicofo's part at the XMPP level: create rooms when asked, leave them when empty."""

    NICK = "focus"

    def __init__(self, websocket_url: str, auth_domain: str, password: str) -> None:
        super().__init__(f"focus@{auth_domain}/focus", password, websocket_url)
        self.rooms: set[str] = set()
        self._answering: set[asyncio.Future[None]] = set()
        self.register_handler(
            Callback(
                "conference",
                MatchXPath(f"{{jabber:client}}iq/{{{FOCUS_NS}}}conference"),
                self._asked,
            )
        )
        self.register_handler(
            Callback("room left", MatchXPath("{jabber:client}presence"), self._maybe_leave)
        )

    async def start(self) -> None:
        await super().start()
        domain = self.boundjid.domain.split(".", 1)[1]
        self.send(self.make_presence(pto=f"focus.{domain}"))  # client_proxy registers this session
        await self.sync()

    def _asked(self, stanza: StanzaBase) -> None:
        task = asyncio.ensure_future(self._answer(cast(Iq, stanza)))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, iq: Iq) -> None:
        request = iq.xml.find(f"{{{FOCUS_NS}}}conference")
        assert request is not None
        room_jid = request.get("room", "")
        if room_jid not in self.rooms:
            try:
                await self.enter(room_jid, self.NICK)
            except (RefusedError, TimeoutError) as error:  # jicofo would answer an error too
                failed = self.make_iq_result(id=iq["id"], ito=iq["from"])
                failed["type"] = "error"
                failed["error"]["condition"] = "service-unavailable"
                failed["error"]["text"] = str(error)
                self.send(failed)
                return
            self.rooms.add(room_jid)
        reply = self.make_iq_result(id=iq["id"], ito=iq["from"])
        reply.append(
            ET.Element(
                f"{{{FOCUS_NS}}}conference",
                {"room": room_jid, "ready": "true", "focusjid": self.boundjid.bare},
            )
        )
        self.send(reply)

    def _maybe_leave(self, stanza: StanzaBase) -> None:
        presence = cast(Presence, stanza)
        room_jid = presence["from"].bare
        if room_jid not in self.rooms:
            return
        view = self.view(room_jid)
        if view.destroyed:
            self.rooms.discard(room_jid)
        elif presence["type"] == "unavailable" and set(view.occupants) <= {self.NICK}:
            self.rooms.discard(room_jid)
            self.send(self.make_presence(pto=f"{room_jid}/{self.NICK}", ptype="unavailable"))
