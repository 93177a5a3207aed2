"""docker-compose.yml and .env.example next to docker-jitsi-meet, checked by parsing.

There is no docker here: services, images, networks, ports, environment and mounts are
compared with what the orchestrator and the Jitsi images expect (docs/deploy.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from tests.deploy_helpers import (
    DOCKERFILE,
    JITSI_SERVICES,
    ROOT,
    compose_services,
    environment,
    load_compose,
    only_variable,
    variables,
    volumes,
)

ENV_EXAMPLE = ROOT / ".env.example"
REQUIRED_SERVICES = {"orchestrator", "worker", "postgres", "mailpit", *JITSI_SERVICES}
SECRETS = (
    "POSTGRES_PASSWORD",
    "ORCH_API_KEY",
    "ORCH_SECRET_KEY",
    "JWT_APP_SECRET",
    "ORCH_JITSI_WEBHOOK_SECRET",
    "JICOFO_AUTH_PASSWORD",
    "JVB_AUTH_PASSWORD",
)


def strings(node: Any) -> Iterator[str]:
    """Every string in the parsed compose file (keys and values, nested)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def env_file_entries(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f"{path.name}: not NAME=value: {line!r}"
            entries[name.strip()] = value
    return entries


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


def image(service: dict[str, Any]) -> tuple[str, str]:
    name, _, tag = str(service["image"]).rpartition(":")
    assert name and "/" not in tag, f"no tag in {service['image']!r}"
    return name, tag


def networks(service: dict[str, Any]) -> dict[str, Any]:
    raw = service.get("networks") or {}
    return {name: None for name in raw} if isinstance(raw, list) else dict(raw)


def published_ports(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def test_variable_forms_are_recognised() -> None:
    text = "a${PLAIN}b ${WITH_DEFAULT:-x} ${REQUIRED:?set it} ${ALT:+y} $BARE $$ESCAPED"
    assert [name for name, _ in variables(text)] == [
        "PLAIN",
        "WITH_DEFAULT",
        "REQUIRED",
        "ALT",
        "BARE",
    ]
    assert dict(variables(text))["REQUIRED"] == ":?set it"


def test_all_services_are_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED_SERVICES


def test_jitsi_images_are_pinned_to_one_release(services: dict[str, dict[str, Any]]) -> None:
    tags = set()
    for name in JITSI_SERVICES:
        repository, tag = image(services[name])
        assert repository == f"jitsi/{name}"
        assert re.fullmatch(r"stable-\d+(-\d+)?", tag), f"{name}: {tag} is not a release"
        tags.add(tag)
    assert len(tags) == 1, f"Jitsi images from different releases: {sorted(tags)}"


def test_postgres_and_mailpit_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    repository, tag = image(services["postgres"])
    assert repository == "postgres"
    assert re.match(r"\d+", tag), f"postgres major version not pinned: {tag}"
    repository, tag = image(services["mailpit"])
    assert repository == "axllent/mailpit"
    assert re.fullmatch(r"v\d+\.\d+(\.\d+)?", tag), f"mailpit not pinned: {tag}"

    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "/var/lib/postgresql/data" in volumes(postgres)


def test_orchestrator_and_worker_share_the_image(services: dict[str, dict[str, Any]]) -> None:
    orchestrator, worker = services["orchestrator"], services["worker"]
    assert orchestrator["build"] == "."
    assert worker["image"] == orchestrator["image"]
    assert volumes(worker)["/data"] == volumes(orchestrator)["/data"]
    assert environment(worker) == environment(orchestrator)
    # SPEC §5: the worker is the `worker` command (which arrives with its own issue).
    assert worker["command"] == ["orchestrator", "worker"]
    # The image's HEALTHCHECK asks the web app; the worker serves no HTTP.
    assert worker["healthcheck"] == {"disable": True}


def test_networks_let_prosody_reach_the_orchestrator(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["networks"])
    assert "meet.jitsi" in declared and len(declared) >= 2
    for name, service in services.items():
        assert set(networks(service)) <= declared, name
    for name in (*JITSI_SERVICES, "orchestrator", "worker"):
        assert "meet.jitsi" in networks(services[name]), name
    internal = declared - {"meet.jitsi"}
    assert set(networks(services["orchestrator"])) & internal
    for name in ("postgres", "mailpit"):
        assert set(networks(services[name])) <= internal, name
    assert "xmpp.meet.jitsi" in networks(services["prosody"])["meet.jitsi"]["aliases"]


def test_only_the_bridge_is_published_beyond_localhost(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for port in published_ports(service):
            assert "5280" not in port, f"{name} publishes prosody's HTTP port: {port}"
            if name == "jvb":
                assert port.endswith("/udp"), port
            else:
                assert port.startswith("127.0.0.1:"), f"{name}: {port} is public"
    assert not published_ports(services["prosody"])
    assert not published_ports(services["postgres"])


def test_orchestrator_settings_point_at_the_stack(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["orchestrator"])
    prosody = environment(services["prosody"])
    assert re.fullmatch(
        r"postgresql://orchestrator:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/orchestrator",
        env["ORCH_DATABASE_URL"],
    )
    assert dict(variables(env["ORCH_SMTP_HOST"]))["ORCH_SMTP_HOST"] == ":-mailpit"
    assert dict(variables(env["ORCH_SMTP_PORT"]))["ORCH_SMTP_PORT"] == ":-1025"
    assert only_variable(env["ORCH_JITSI_BASE_URL"]) == "PUBLIC_URL"
    assert only_variable(env["ORCH_JITSI_APP_ID"]) == "JWT_APP_ID"
    assert only_variable(env["ORCH_JITSI_APP_SECRET"]) == "JWT_APP_SECRET"
    assert env["ORCH_JITSI_DOMAIN"] == prosody["XMPP_DOMAIN"]
    assert env["ORCH_JITSI_PROSODY_URL"] == f"http://{prosody['XMPP_SERVER']}:5280"
    assert only_variable(env["ORCH_JITSI_WEBHOOK_SECRET"]) == "ORCH_JITSI_WEBHOOK_SECRET"
    assert only_variable(prosody["ORCH_JITSI_WEBHOOK_SECRET"]) == "ORCH_JITSI_WEBHOOK_SECRET"
    for name in ("ORCH_API_KEY", "ORCH_SECRET_KEY", "ORCH_BASE_URL"):
        assert only_variable(env[name]) == name


def test_every_orch_setting_exists(services: dict[str, dict[str, Any]]) -> None:
    used = {key for service in services.values() for key in environment(service)}
    used |= set(re.findall(r"\b(ORCH_[A-Z0-9_]+)=", DOCKERFILE.read_text(encoding="utf-8")))
    # The prosody container gets the webhook secret under the orchestrator's name; it is a
    # setting of the orchestrator all the same.
    orch = {name for name in used if name.startswith("ORCH_")}
    assert orch
    unknown = {
        name for name in orch if name.removeprefix("ORCH_").lower() not in Settings.model_fields
    }
    assert not unknown, f"not fields of orchestrator.config.Settings: {sorted(unknown)}"


def test_every_variable_is_in_env_example(compose: dict[str, Any]) -> None:
    used = {name for text in strings(compose) for name, _ in variables(text)}
    listed = set(env_file_entries(ENV_EXAMPLE))
    assert not used - listed, f"missing in .env.example: {sorted(used - listed)}"
    assert not listed - used, f"unused in docker-compose.yml: {sorted(listed - used)}"


def test_secrets_are_required_and_left_blank(compose: dict[str, Any]) -> None:
    entries = env_file_entries(ENV_EXAMPLE)
    for name in SECRETS:
        assert entries[name] == "", f"{name} has a value in .env.example"
    assert "openssl rand -hex 32" in ENV_EXAMPLE.read_text(encoding="utf-8")
    # `docker compose` refuses to start while a secret is empty (${NAME:?...}).
    for text in strings(compose):
        for name, modifier in variables(text):
            if name in SECRETS:
                assert modifier.startswith(":?"), f"{name} is not required in {text!r}"


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source in volumes(service).values():
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts missing {source}"
