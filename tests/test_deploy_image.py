"""The orchestrator's image: the Dockerfile, and the commands it and compose run.

Every `orchestrator ...` invocation is checked against the real Typer command tree.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import typer.main

from orchestrator.cli import app as cli_app
from orchestrator.web import health
from tests.deploy_helpers import DOCKERFILE, compose_services


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


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
