"""Our RS256 "system" token for prosody's HTTP control modules (muc_end_meeting).

Prosody reads the header's `kid`, fetches `{key server}/{sha256_hex(kid)}.pem` (option
`prosody_password_public_key_repo_url`), checks the signature, `typ` JWT, `exp`/`nbf`, that
`iss` is an accepted issuer (default: the VirtualHost's `app_id`), that `aud` is an accepted
audience (default `*`; docker's JWT_ACCEPTED_AUDIENCES sets it for every module) and, with
`asap_require_room_claim` (default on), that a `room` claim is present
(jitsi-meet `resources/prosody-plugins/token/util.lib.lua`, `luajwtjitsi.lib.lua`).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestrator.config import Settings

PRIVATE_KEY_FILE = "jitsi_asap_private.pem"
LIFETIME = timedelta(minutes=5)
# Prosody compares nbf with its own clock; allow that clock to lag a little behind ours.
CLOCK_SKEW = timedelta(seconds=60)


def private_key_path(settings: Settings) -> Path:
    return settings.secrets_dir / PRIVATE_KEY_FILE


def _new_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_once(path: Path, content: bytes) -> bytes:
    """Write a new 0600 file; when another process was first, use its content."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return content


def private_key_pem(settings: Settings) -> bytes:
    """The private key (PKCS#8 PEM), generated into the data directory on first use."""
    path = private_key_path(settings)
    if path.exists():
        return path.read_bytes()
    return _write_once(path, _new_private_key_pem())


def _private_key(settings: Settings) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_key_pem(settings), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{private_key_path(settings)} is not an RSA key")
    return key


def public_key_pem(settings: Settings) -> bytes:
    """The public key (SubjectPublicKeyInfo PEM) prosody fetches to check our tokens."""
    return (
        _private_key(settings)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def key_file_name(key_id: str) -> str:
    """The file name prosody asks the key server for: hex sha256 of the kid, then .pem."""
    return hashlib.sha256(key_id.encode()).hexdigest() + ".pem"


def system_token(settings: Settings, now: datetime, room: str) -> str:
    """A short-lived RS256 token for one call to a prosody control endpoint about `room`."""
    claims = {
        "iss": settings.jitsi_app_id,
        # Like our participant tokens (tokens.py): docker's JWT_ACCEPTED_AUDIENCES is global.
        "aud": settings.jitsi_app_id,
        "sub": settings.jitsi_domain,
        # Required by prosody's default asap_require_room_claim; bound to the one room we act on.
        "room": room,
        "iat": int(now.timestamp()),
        "nbf": int((now - CLOCK_SKEW).timestamp()),
        "exp": int((now + LIFETIME).timestamp()),
    }
    headers = {"kid": settings.jitsi_asap_key_id, "typ": "JWT"}
    return jwt.encode(claims, _private_key(settings), algorithm="RS256", headers=headers)
