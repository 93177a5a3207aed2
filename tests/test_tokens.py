"""Jitsi JWTs decoded with PyJWT under the rules of JITSI.md ("Access: JWT per person")."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from orchestrator.jitsi.tokens import JitsiUser, audience, mint

SECRET = "test-jitsi-secret-0123456789abcdef"
APP_ID = "orchestrator"
DOMAIN = "meet.jitsi"
ROOM = "sprache-0123456789abcdef0123"
OPENS = datetime(2027, 3, 18, 9, 45, tzinfo=UTC)
CLOSES = datetime(2027, 3, 18, 11, 45, 30, 900_000, tzinfo=UTC)


def _mint(user: JitsiUser, room: str = ROOM) -> str:
    return mint(
        app_id=APP_ID,
        secret=SECRET,
        domain=DOMAIN,
        room=room,
        user=user,
        not_before=OPENS,
        expires=CLOSES,
    )


def _decode(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience=APP_ID,
        issuer=APP_ID,
        # The window lies in 2027: check nbf/exp by value below, not against today's clock.
        options={
            "verify_exp": False,
            "verify_nbf": False,
            "require": ["iss", "aud", "sub", "room", "nbf", "exp", "context"],
        },
    )
    return claims


def _user(moderator: bool = False, **fields: str) -> JitsiUser:
    values = {"id": str(uuid.uuid4()), "name": "Ayşe Yılmaz", "email": "ayse@example.org"}
    values.update(fields)
    return JitsiUser(values["id"], values["name"], values["email"], moderator)


def test_header_is_hs256_jwt() -> None:
    header = jwt.get_unverified_header(_mint(_user()))
    assert header == {"alg": "HS256", "typ": "JWT"}


def test_claims_follow_jitsi_rules() -> None:
    user = _user()
    claims = _decode(_mint(user))
    assert claims["iss"] == APP_ID
    assert claims["aud"] == APP_ID == audience(APP_ID)
    assert isinstance(claims["aud"], str)
    assert claims["sub"] == DOMAIN
    assert claims["room"] == ROOM
    assert claims["nbf"] == int(OPENS.timestamp())
    assert claims["exp"] == int(CLOSES.timestamp())
    assert isinstance(claims["nbf"], int) and isinstance(claims["exp"], int)
    assert claims["context"] == {
        "user": {
            "id": user.id,
            "name": "Ayşe Yılmaz",
            "email": "ayse@example.org",
            "moderator": "false",
        }
    }
    assert "moderator" not in claims  # a top-level claim would be ignored by Jitsi


def test_moderator_is_the_string_true() -> None:
    assert _decode(_mint(_user(moderator=True)))["context"]["user"]["moderator"] == "true"
    assert _decode(_mint(_user(moderator=False)))["context"]["user"]["moderator"] == "false"


def test_lobby_bypass_is_a_json_boolean_and_only_when_asked() -> None:
    bypass = dataclasses.replace(_user(moderator=True), lobby_bypass=True)
    assert _decode(_mint(bypass))["context"]["user"]["lobby_bypass"] is True
    assert "lobby_bypass" not in _decode(_mint(_user(moderator=True)))["context"]["user"]


def test_user_values_are_strings_never_null() -> None:
    user = _user(name="", email="")
    values = _decode(_mint(user))["context"]["user"]
    assert all(isinstance(value, str) for value in values.values())
    assert values["name"] == "" and values["email"] == ""


def test_markup_and_quotes_travel_verbatim() -> None:
    name = '<script>alert(1)</script> O\'Brien "Ü"'
    assert _decode(_mint(_user(name=name)))["context"]["user"]["name"] == name


@pytest.mark.parametrize("room", ["*", "", "sprache@conference.meet.jitsi"])
def test_never_a_wildcard_or_jid_room(room: str) -> None:
    with pytest.raises(ValueError, match="bare room"):
        _mint(_user(), room=room)


def test_other_secret_or_audience_is_rejected() -> None:
    token = _mint(_user())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token, "another-secret-0123456789abcdef-0123", algorithms=["HS256"], audience=APP_ID
        )
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            audience="jitsi",
            options={"verify_exp": False, "verify_nbf": False},
        )


def test_pyjwt_enforces_the_window() -> None:
    now = datetime.now(UTC)
    user = _user()
    ahead = mint(
        app_id=APP_ID,
        secret=SECRET,
        domain=DOMAIN,
        room=ROOM,
        user=user,
        not_before=now + timedelta(hours=1),
        expires=now + timedelta(hours=2),
    )
    with pytest.raises(jwt.ImmatureSignatureError):
        jwt.decode(ahead, SECRET, algorithms=["HS256"], audience=APP_ID)
    past = mint(
        app_id=APP_ID,
        secret=SECRET,
        domain=DOMAIN,
        room=ROOM,
        user=user,
        not_before=now - timedelta(hours=2),
        expires=now - timedelta(hours=1),
    )
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(past, SECRET, algorithms=["HS256"], audience=APP_ID)
