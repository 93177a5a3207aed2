"""Jitsi access tokens: one HS256 JWT per person per room (JITSI.md, "Access").

The audience is the app id. Prosody accepts any `aud` while `JWT_ACCEPTED_AUDIENCES` is
left at its default `*`; a deployment that sets it must list the app id
(`JWT_ACCEPTED_AUDIENCES=<ORCH_JITSI_APP_ID>`), since a set audience must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import jwt

ALGORITHM = "HS256"


@dataclass(frozen=True)
class JitsiUser:
    """Who the token is for; every value reaches prosody as a string."""

    id: str  # our stable person id: attendance events identify the person by it
    name: str
    email: str
    moderator: bool


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
    return {
        "iss": app_id,
        "aud": audience(app_id),
        "sub": domain,
        "room": room,
        "nbf": int(not_before.timestamp()),
        "exp": int(expires.timestamp()),
        "context": {
            "user": {
                "id": str(user.id),
                "name": user.name or "",
                "email": user.email or "",
                "moderator": "true" if user.moderator else "false",
            }
        },
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
