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
SHORT_PREFIX = "sc1"
SHORT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0, O, 1, I, L
SHORT_LENGTH = 8  # 31**8: about 40 bits
LOOK_ALIKES = frozenset("0O1IL")
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


def short_code(secret: str, person_id: uuid.UUID) -> str:
    """The person's eight-character code for typing, e.g. `K7QM3XPA`."""
    digest = hmac.new(secret.encode(), f"{SHORT_PREFIX}:{person_id}".encode(), hashlib.sha256)
    number = int.from_bytes(digest.digest()[:8])
    letters = []
    for _ in range(SHORT_LENGTH):
        number, index = divmod(number, len(SHORT_ALPHABET))
        letters.append(SHORT_ALPHABET[index])
    return "".join(letters)


def grouped(code: str) -> str:
    """A short code as shown and read out: two groups of four (`K7QM 3XPA`)."""
    return f"{code[:4]} {code[4:]}"


def normalise_short_code(text: str) -> str | None:
    """The short code typed (any case, spaces, hyphens), or None when it cannot be one."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(cleaned) != SHORT_LENGTH or any(ch not in SHORT_ALPHABET for ch in cleaned):
        return None
    return cleaned


def has_look_alike(text: str) -> bool:
    """Whether the typed text holds a character no short code has (0, O, 1, I, L)."""
    return any(ch in LOOK_ALIKES for ch in text.upper())


def is_signed_code(text: str) -> bool:
    """A scanned QR code (`ci1.…`) rather than a typed short code."""
    return text.strip().startswith(f"{PREFIX}.")


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
