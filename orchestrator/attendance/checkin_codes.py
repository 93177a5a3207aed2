"""Signed check-in codes: the QR code on the invitation and the personal page.

A code names the person and carries an HMAC under ORCH_SECRET_KEY, so staff scanning it
at the door need no lookup table and a forged or altered code is refused. It is not the
personal token: seeing someone's badge lets you check them in, not open their page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import uuid

import segno

PREFIX = "ci1"
_MAC_BYTES = 16  # 128 bits


def _mac(secret: str, person_id: uuid.UUID) -> str:
    digest = hmac.new(secret.encode(), f"{PREFIX}:{person_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:_MAC_BYTES]).decode().rstrip("=")


def checkin_code(secret: str, person_id: uuid.UUID) -> str:
    """`ci1.<person id hex>.<mac>`: short enough for a small, robust QR code."""
    return f"{PREFIX}.{person_id.hex}.{_mac(secret, person_id)}"


def verify_checkin_code(secret: str, code: str) -> uuid.UUID | None:
    """The person a code names, or None when it is malformed or its signature is wrong."""
    parts = code.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        person_id = uuid.UUID(hex=parts[1])
    except ValueError:
        return None
    if not hmac.compare_digest(parts[2], _mac(secret, person_id)):
        return None
    return person_id


def qr_svg(data: str, *, title: str) -> str:
    """An inline SVG QR code (for pages) with an accessible title."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(
        buffer, kind="svg", scale=6, border=2, title=title, xmldecl=False, svgns=True, nl=False
    )
    return buffer.getvalue().decode()


def qr_png(data: str) -> bytes:
    """A PNG QR code (for mail, as an inline image)."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()
