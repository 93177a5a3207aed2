"""The Jitsi side of the deployment: prosody, jicofo and the files in config/jitsi/.

Their environment in docker-compose.yml and the prosody Lua files are read as text and
compared with what the orchestrator serves (token keys, reservations, event webhooks).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy_helpers import (
    JITSI_SERVICES,
    ROOT,
    compose_services,
    environment,
    only_variable,
    volumes,
)

JITSI_CONFIG = ROOT / "config" / "jitsi"
CALLBACKS = "http://orchestrator:8000/jitsi"  # prosody's view of the orchestrator


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


def truthy(value: str) -> bool:
    assert value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}, value
    return value.lower() in {"1", "true", "yes", "on"}


def lua(name: str) -> str:
    text = (JITSI_CONFIG / name).read_text(encoding="utf-8")
    # Drop comments so only settings are matched.
    return re.sub(r"--[^\n]*", "", text)


def test_prosody_is_set_up_for_the_orchestrator(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["prosody"])
    assert truthy(env["ENABLE_AUTH"])
    assert env["AUTH_TYPE"] == "jwt"
    assert not truthy(env["ENABLE_GUESTS"])
    assert "token_affiliation" in env["XMPP_MUC_MODULES"].split(",")
    assert {"muc_size", "muc_census"} <= set(env["XMPP_MODULES"].split(","))
    assert truthy(env["PROSODY_RESERVATION_ENABLED"])
    assert env["PROSODY_RESERVATION_REST_BASE_URL"] == f"{CALLBACKS}/reservation"
    # Tokens: the orchestrator's app id and secret.
    orchestrator = environment(services["orchestrator"])
    assert only_variable(env["JWT_APP_ID"]) == only_variable(orchestrator["ORCH_JITSI_APP_ID"])
    assert only_variable(env["JWT_APP_SECRET"]) == only_variable(
        orchestrator["ORCH_JITSI_APP_SECRET"]
    )
    # muc_end_meeting checks the orchestrator's HS256 system tokens with the app secret; a
    # key server would only be asked for RS256 tokens, which that host setting refuses.
    assert "muc_end_meeting" in env["GLOBAL_MODULES"].split(",")
    assert "public_key_repo_url" not in env.get("GLOBAL_CONFIG", "")
    # The lobby and max_occupants of a reservation answer need these.
    assert "persistent_lobby" in env["XMPP_MODULES"].split(",")
    assert truthy(env["ENABLE_LOBBY"])
    assert int(env["MAX_PARTICIPANTS"]) > 0


def test_jicofo_leaves_moderation_to_the_tokens(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["jicofo"])
    assert not truthy(env["ENABLE_AUTO_OWNER"])
    assert not truthy(env["JICOFO_ENABLE_AUTH"])


def test_jitsi_services_agree_on_the_xmpp_names(services: dict[str, dict[str, Any]]) -> None:
    names = ("XMPP_DOMAIN", "XMPP_AUTH_DOMAIN", "XMPP_MUC_DOMAIN", "XMPP_SERVER")
    first = environment(services["prosody"])
    for name in JITSI_SERVICES:
        env = environment(services[name])
        assert {key: env[key] for key in names} == {key: first[key] for key in names}, name
    assert first["XMPP_SERVER"] == "xmpp.meet.jitsi"


def test_prosody_mounts_the_config_files(services: dict[str, dict[str, Any]]) -> None:
    mounts = volumes(services["prosody"])
    assert mounts["/config/conf.d/event_sync.cfg.lua"] == "./config/jitsi/event_sync.cfg.lua"
    assert mounts["/config/conf.d/reservations.cfg.lua"] == "./config/jitsi/reservations.cfg.lua"
    assert (
        mounts["/prosody-plugins-custom/mod_event_sync_component.lua"]
        == "./config/jitsi/mod_event_sync_component.lua"
    )


def test_event_sync_posts_to_the_orchestrator_with_the_secret(
    services: dict[str, dict[str, Any]],
) -> None:
    text = lua("event_sync.cfg.lua")
    prosody = environment(services["prosody"])
    domain, muc = prosody["XMPP_DOMAIN"], prosody["XMPP_MUC_DOMAIN"]
    assert re.search(
        rf'Component\s+"event_sync\.{re.escape(domain)}"\s+"event_sync_component"', text
    )
    assert re.search(rf'\bmuc_component\s*=\s*"{re.escape(muc)}"', text)
    assert re.search(rf'\bmuc_mapper_domain_base\s*=\s*"{re.escape(domain)}"', text)
    assert re.search(rf'\bapi_prefix\s*=\s*"{re.escape(CALLBACKS)}"', text)
    bearer = r'\["Authorization"\]\s*=\s*"Bearer "\s*\.\.\s*ENV_(\w+)'
    header = re.search(rf"\bapi_headers\s*=\s*\{{\s*{bearer}", text)
    assert header and header.group(1) == "ORCH_JITSI_WEBHOOK_SECRET"
    assert header.group(1) in prosody
    for option in ("api_timeout", "api_retry_count", "api_retry_delay"):
        assert re.search(rf"\b{option}\s*=\s*\d+", text), option


def test_reservations_send_the_secret_and_honour_the_answer(
    services: dict[str, dict[str, Any]],
) -> None:
    text = lua("reservations.cfg.lua")
    prosody = environment(services["prosody"])
    assert re.search(rf'VirtualHost\s+"{re.escape(prosody["XMPP_DOMAIN"])}"', text)
    bearer = r'\["Authorization"\]\s*=\s*"Bearer "\s*\.\.\s*ENV_(\w+)'
    header = re.search(rf"\breservations_api_headers\s*=\s*\{{\s*{bearer}", text)
    assert header and header.group(1) == "ORCH_JITSI_WEBHOOK_SECRET"
    assert header.group(1) in prosody
    for option in ("reservations_enable_max_occupants", "reservations_enable_lobby_support"):
        assert re.search(rf"\b{option}\s*=\s*true\b", text), option
    # The base URL comes from the image's variable, not from a second definition here.
    assert "reservations_api_prefix" not in text


def test_event_sync_loader_runs_the_module_of_the_image() -> None:
    text = lua("mod_event_sync_component.lua")
    assert '"/prosody-plugins-contrib/event_sync/mod_event_sync_component.lua"' in text
    assert re.search(r"loadfile\(path,\s*\"t\",\s*_ENV\)", text)
