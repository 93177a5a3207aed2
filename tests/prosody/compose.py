"""The prosody service's environment as docker-compose.yml sets it, with test values filled in.

The lane renders prosody's configuration from these values the way docker-jitsi-meet's
templates do, so a change to the compose file (a module added to XMPP_MUC_MODULES, another
reservation URL) reaches the lane without being repeated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# docker-compose.yml names the orchestrator by its service name on the meet.jitsi network.
ORCHESTRATOR_URL = "http://orchestrator:8000"
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:[?-])(?P<arg>[^}]*))?\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg
        raise KeyError(f"docker-compose.yml needs {name} ({arg})")

    return _VARIABLE.sub(replace, value)


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass(frozen=True)
class ProsodyEnv:
    """The variables of the compose file's prosody service, interpolated."""

    values: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        return _flag(self.values.get(name), default)

    def modules(self, name: str) -> list[str]:
        return _list(self.values.get(name))

    @property
    def domain(self) -> str:
        return self.get("XMPP_DOMAIN", "meet.jitsi")

    @property
    def auth_domain(self) -> str:
        return self.get("XMPP_AUTH_DOMAIN", f"auth.{self.domain}")

    @property
    def muc_domain(self) -> str:
        return self.get("XMPP_MUC_DOMAIN", f"muc.{self.domain}")

    @property
    def app_id(self) -> str:
        return self.get("JWT_APP_ID")

    @property
    def app_secret(self) -> str:
        return self.get("JWT_APP_SECRET")

    @property
    def focus_password(self) -> str:
        return self.get("JICOFO_AUTH_PASSWORD")


def prosody_env(secrets: dict[str, str], compose_file: Path = COMPOSE_FILE) -> ProsodyEnv:
    """The prosody service's environment; `secrets` stand in for the values of `.env`."""
    document = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    environment = document["services"]["prosody"]["environment"]
    values = {str(key): _interpolate(str(value), secrets) for key, value in environment.items()}
    return ProsodyEnv(values)
