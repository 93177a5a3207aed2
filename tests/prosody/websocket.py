"""XMPP over WebSocket (RFC 7395) for slixmpp, which speaks only TCP streams.

The web client connects to prosody's `/xmpp-websocket?room=ROOM&token=JWT` (mod_websocket,
mod_jitsi_session reads the query). This transport sits between slixmpp's stream parser and
a `websockets` connection: slixmpp's `<stream:stream ...>` header goes out as the framing
`<open/>`, its footer as `<close/>`, every other write as one text frame; an incoming
`<open/>` is fed to slixmpp as a stream header, `<close/>` as the footer, anything else as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import quoteattr

import slixmpp
from slixmpp.xmlstream import XMLStream
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
_TO = re.compile(r"""\bto=['"]([^'"]+)['"]""")


def _outgoing(data: str) -> str:
    text = data.strip()
    if text.startswith("<stream:stream"):
        match = _TO.search(text)
        to = f" to={quoteattr(match.group(1))}" if match else ""
        return f'<open xmlns="{FRAMING}"{to} version="1.0"/>'
    if text == "</stream:stream>":
        return f'<close xmlns="{FRAMING}"/>'
    # Each frame is parsed on its own: a stanza must name its namespace (RFC 7395 3.3.3).
    head = text[: text.find(">") + 1]
    if text.startswith("<") and "xmlns=" not in head:
        name_end = re.match(r"<[\w:.-]+", text)
        if name_end is not None:
            cut = name_end.end()
            return f'{text[:cut]} xmlns="jabber:client"{text[cut:]}'
    return data


def _incoming(frame: str) -> str:
    if FRAMING not in frame:
        return frame
    element = ET.fromstring(frame)
    if element.tag == f"{{{FRAMING}}}close":
        return "</stream:stream>"
    if element.tag != f"{{{FRAMING}}}open":
        return frame
    attributes = "".join(
        f" {name.replace('{http://www.w3.org/XML/1998/namespace}', 'xml:')}={quoteattr(value)}"
        for name, value in element.attrib.items()
    )
    return (
        "<stream:stream xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams'{attributes}>"
    )


class WebSocketTransport(asyncio.Transport):
    """An asyncio transport over one WebSocket connection, frames in order."""

    def __init__(self, socket: ClientConnection, protocol: XMLStream) -> None:
        super().__init__()
        self._socket, self._protocol = socket, protocol
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._closed = False
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        text = bytes(data).decode() if not isinstance(data, str) else data
        self._outbox.put_nowait(_outgoing(text))

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Send what is queued, then close the WebSocket cleanly."""
        if not self._closed:
            self._closed = True
            self._outbox.put_nowait(None)

    def abort(self) -> None:
        """Drop the TCP connection without a WebSocket close: a lost network."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        transport = self._socket.transport
        if transport is not None:
            transport.abort()
        self._protocol.connection_lost(None)

    async def _read(self) -> None:
        try:
            async for frame in self._socket:
                text = frame if isinstance(frame, str) else frame.decode()
                self._protocol.data_received(_incoming(text).encode())
        except ConnectionClosed:
            pass
        if not self._tasks[1].done():
            self._tasks[1].cancel()
        self._closed = True
        self._protocol.connection_lost(None)

    async def _write(self) -> None:
        while (text := await self._outbox.get()) is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._socket.send(text)
        await self._socket.close()


class WebSocketClient(slixmpp.ClientXMPP):
    """A slixmpp client whose stream runs over prosody's WebSocket at `url`."""

    def __init__(self, jid: str, password: str, url: str) -> None:
        super().__init__(jid, password)
        self.url = url
        self.handshake_status: int | None = None  # HTTP status when the upgrade was refused

    async def _attempt_connection(
        self, host: str, port: int, tls: bool, server_hostname: str | None
    ) -> bool:
        self.event_when_connected = "connected"
        try:
            socket = await connect(self.url, subprotocols=["xmpp"], open_timeout=10)  # type: ignore[list-item]
        except InvalidStatus as error:
            self.handshake_status = error.response.status_code
            self.event("connection_failed", error)
            return False
        except (OSError, InvalidHandshake, TimeoutError) as error:
            self.event("connection_failed", error)
            return False
        self.connection_made(WebSocketTransport(socket, self))
        return True
