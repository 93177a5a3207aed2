"""The deployment next to docker-jitsi-meet, checked by parsing (there is no docker here).

docker-compose.yml, .env.example, the Dockerfile and the prosody files in config/jitsi/
are read as files: services, images, networks, ports, environment, mounts and commands
are compared with what the orchestrator and the Jitsi images expect (docs/deploy.md).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from orchestrator.cli import app as cli_app
from orchestrator.config import Settings
from orchestrator.web import health

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
JITSI_CONFIG = ROOT / "config" / "jitsi"

JITSI_SERVICES = ("web", "prosody", "jicofo", "jvb")
REQUIRED_SERVICES = {"orchestrator", "worker", "postgres", "mailpit", *JITSI_SERVICES}
CALLBACKS = "http://orchestrator:8000/jitsi"  # prosody's view of the orchestrator
SECRETS = (
    "POSTGRES_PASSWORD",
    "ORCH_API_KEY",
    "ORCH_SECRET_KEY",
    "JWT_APP_SECRET",
    "ORCH_JITSI_WEBHOOK_SECRET",
    "JICOFO_AUTH_PASSWORD",
    "JVB_AUTH_PASSWORD",
)

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+x} and
# $NAME, as docker compose interpolates them; "$$" is a literal dollar sign.
VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>:?[-?+][^}]*)?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def variables(text: str) -> list[tuple[str, str]]:
    """(name, modifier) of every interpolated variable in one compose string."""
    found = []
    for match in VARIABLE.finditer(text.replace("$$", "")):
        name = match.group("braced") or match.group("bare")
        found.append((name, match.group("modifier") or ""))
    return found


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


def truthy(value: str) -> bool:
    assert value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}, value
    return value.lower() in {"1", "true", "yes", "on"}


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
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose also allows a NAME=value list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def only_variable(value: str) -> str:
    """The name of the one variable a value consists of (e.g. "${PUBLIC_URL:?...}")."""
    names = variables(value)
    assert len(names) == 1 and re.fullmatch(r"\$\{[^}]*\}|\$\w+", value), value
    return names[0][0]


def image(service: dict[str, Any]) -> tuple[str, str]:
    name, _, tag = str(service["image"]).rpartition(":")
    assert name and "/" not in tag, f"no tag in {service['image']!r}"
    return name, tag


def networks(service: dict[str, Any]) -> dict[str, Any]:
    raw = service.get("networks") or {}
    return {name: None for name in raw} if isinstance(raw, list) else dict(raw)


def volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host source of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = source
    return mounts


def published_ports(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


# --- the compose file --------------------------------------------------------------------


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
    # muc_end_meeting checks the orchestrator's RS256 tokens with keys served by it.
    assert "muc_end_meeting" in env["GLOBAL_MODULES"].split(",")
    assert f'prosody_password_public_key_repo_url = "{CALLBACKS}/asap"' in env["GLOBAL_CONFIG"]
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


# --- prosody files -----------------------------------------------------------------------


def lua(name: str) -> str:
    text = (JITSI_CONFIG / name).read_text(encoding="utf-8")
    # Drop comments so only settings are matched.
    return re.sub(r"--[^\n]*", "", text)


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


# --- the image ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def cli_commands(shell: str) -> list[list[str]]:
    """The `orchestrator ...` invocations of an `sh -c` string joined with &&."""
    commands = []
    for part in shell.split("&&"):
        argv = shlex.split(part)
        if argv and argv[0] == "exec":
            argv = argv[1:]
        commands.append(argv)
    return commands


def assert_cli_accepts(argv: list[str]) -> None:
    """argv is an existing `orchestrator` subcommand with options it knows."""
    assert argv[0] == "orchestrator", argv
    # Typer ships its own click, so the command tree is walked by shape, not by class.
    command: Any = typer.main.get_command(cli_app)
    words = [word for word in argv[1:] if not word.startswith("-")]
    for word in words:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            break
        assert word in subcommands, f"no command {word!r} in {argv}"
        command = subcommands[word]
    known = {opt for param in command.params for opt in param.opts}
    for word in argv[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{word} unknown in {argv}"


def test_dockerfile_runs_existing_commands_as_a_user() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    cmd = json.loads(dict(instructions)["CMD"])
    assert cmd[:2] == ["sh", "-c"]
    commands = cli_commands(cmd[2])
    assert [argv[1:3] for argv in commands] == [["db", "upgrade"], ["serve", "--host"]]
    for argv in commands:
        assert_cli_accepts(argv)

    user = dict(instructions)["USER"]
    assert user not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")

    healthcheck = dict(instructions)["HEALTHCHECK"]
    probe = json.loads(healthcheck.partition("CMD")[2])
    assert probe[0] == "python"
    assert "http://127.0.0.1:8000/healthz" in probe[-1]
    assert "/healthz" in {getattr(route, "path", None) for route in health.router.routes}


def test_dockerfile_points_settings_at_the_image_paths() -> None:
    instructions = dockerfile_instructions()
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "ORCH_ROOM_TEMPLATES_DIR=/app/room_templates" in env
    assert "ORCH_DATA_DIR=/data" in env
    assert ("WORKDIR", "/app") in instructions
    assert ("COPY", "room_templates ./room_templates") in instructions


def test_compose_runs_existing_commands(services: dict[str, dict[str, Any]]) -> None:
    command = services["orchestrator"]["command"]
    assert command[:2] == ["sh", "-c"]
    commands = cli_commands(command[2])
    assert commands[0][1:] == ["db", "upgrade"]
    assert commands[1][1:2] == ["serve"] and "--no-worker" in commands[1]
    assert commands[1][commands[1].index("--host") + 1] == "0.0.0.0"
    assert commands[1][commands[1].index("--port") + 1] == "8000"
    for argv in commands:
        assert_cli_accepts(argv)
