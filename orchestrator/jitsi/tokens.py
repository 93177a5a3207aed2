"""Jitsi tokens, all HS256 with the app secret (JITSI.md, "Access").

One token per person per room lets them in; a short-lived system token authorises one call
to prosody's muc_end_meeting, which checks it with the same host settings (a key-server URL
does not make it take RS256: prosody answers an RS256 token with 401).

The audience is the app id. Prosody accepts any `aud` while `JWT_ACCEPTED_AUDIENCES` is
left at its default `*`; a deployment that sets it must list the app id
(`JWT_ACCEPTED_AUDIENCES=<ORCH_JITSI_APP_ID>`), since a set audience must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
SYSTEM_TOKEN_LIFETIME = timedelta(minutes=5)
# Prosody compares nbf with its own clock; allow that clock to lag a little behind ours.
CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class JitsiUser:
    """Who the token is for; every value reaches prosody as a string."""

    id: str  # our stable person id: attendance events identify the person by it
    name: str
    email: str
    moderator: bool
    # Skips the lobby (jitsi-contrib token_lobby_bypass), which otherwise stops moderators
    # too: the lobby check runs before token_affiliation makes anyone moderator.
    lobby_bypass: bool = False


def audience(app_id: str) -> str:
    """The `aud` we issue: the app id (documented above)."""
    return app_id


def claims(
    *,
    app_id: str,
    domain: str,
    room: str,
    user: JitsiUser,
    not_before: datetime,
    expires: datetime,
) -> dict[str, object]:
    """The token's payload: strings in `context.user`, integer epoch seconds, one room."""
    if not room or room == "*" or "@" in room:
        raise ValueError(f"a token is for one bare room name, not {room!r}")
    person: dict[str, object] = {
        "id": str(user.id),
        "name": user.name or "",
        "email": user.email or "",
        "moderator": "true" if user.moderator else "false",
    }
    if user.lobby_bypass:
        person["lobby_bypass"] = True  # a JSON boolean: the one non-string prosody takes
    return {
        "iss": app_id,
        "aud": audience(app_id),
        "sub": domain,
        "room": room,
        "nbf": int(not_before.timestamp()),
        "exp": int(expires.timestamp()),
        "context": {"user": person},
    }


def mint(
    *,
    app_id: str,
    secret: str,
    domain: str,
    room: str,
    user: JitsiUser,
    not_before: datetime,
    expires: datetime,
) -> str:
    """A signed HS256 JWT letting `user` into `room` between `not_before` and `expires`."""
    payload = claims(
        app_id=app_id,
        domain=domain,
        room=room,
        user=user,
        not_before=not_before,
        expires=expires,
    )
    return jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


def system_token(*, app_id: str, secret: str, domain: str, room: str, now: datetime) -> str:
    """A five-minute token for one muc_end_meeting call about `room`."""
    payload = {
        "iss": app_id,
        "aud": audience(app_id),
        "sub": domain,
        # Required by prosody's default asap_require_room_claim; bound to the one room.
        "room": room,
        "iat": int(now.timestamp()),
        "nbf": int((now - CLOCK_SKEW).timestamp()),
        "exp": int((now + SYSTEM_TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})
