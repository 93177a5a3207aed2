"""What the deployment tests share: the compose file parsed, and reading its services."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

JITSI_SERVICES = ("web", "prosody", "jicofo", "jvb")

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


@functools.cache
def load_compose() -> dict[str, Any]:
    """docker-compose.yml parsed once per test run (the tests only read it)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    found = load_compose()["services"]
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


def volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host source of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = source
    return mounts
