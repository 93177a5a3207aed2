"""Room templates (room_templates/*.toml): Jitsi settings, lobby, size, window, moderators."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigurationError
from orchestrator.participants.models import Role

REQUIRED = ("plenary", "forum", "hybrid-room-system")
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "room_templates"

JsonValue = bool | int | float | str | list[Any] | dict[str, Any]


class RoomTemplate(BaseModel):
    """One template; `key` is the file name without `.toml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    title: str
    lobby: bool = False
    max_occupants: int | None = Field(default=None, ge=1, le=10_000)
    # The room may be entered this long before the session starts / after it ends.
    open_before: timedelta = timedelta(minutes=15)
    close_after: timedelta = timedelta(minutes=15)
    # Roles that are moderator in this room. Forum moderators count only in their own forum.
    moderator_roles: frozenset[Role] = frozenset({Role.ORGANISER})
    # Jitsi overrides passed in the URL fragment: #config.startWithAudioMuted=true ...
    config: dict[str, JsonValue] = Field(default_factory=dict)
    interface_config: dict[str, JsonValue] = Field(default_factory=dict)

    def fragment(self) -> str:
        """The URL fragment (without '#') carrying the Jitsi config overrides."""
        pairs = [
            *_flatten("config", self.config),
            *_flatten("interfaceConfig", self.interface_config),
        ]
        return "&".join(
            f"{key}={quote(json.dumps(value, separators=(',', ':')), safe='')}"
            for key, value in pairs
        )


def _flatten(prefix: str, values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for name, value in values.items():
        if isinstance(value, dict):
            pairs.extend(_flatten(f"{prefix}.{name}", value))
        else:
            pairs.append((f"{prefix}.{name}", value))
    return pairs


class TemplateError(ConfigurationError):
    code = "room_template"


def _problem(path: Path, error: ValidationError) -> TemplateError:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(Datei)"
    return TemplateError(f"Raumvorlage {path}: Schlüssel {key}: {first['msg']}")


def load_template(path: Path) -> RoomTemplate:
    """Read and validate one template file; errors name the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise TemplateError(f"Raumvorlage {path}: nicht lesbar ({error})") from None
    if "key" in data:
        raise TemplateError(f"Raumvorlage {path}: Schlüssel key: ergibt sich aus dem Dateinamen")
    try:
        return RoomTemplate.model_validate({"key": path.stem, **data})
    except ValidationError as error:
        raise _problem(path, error) from None


def load_templates(directory: Path = DEFAULT_DIR) -> dict[str, RoomTemplate]:
    """All templates of a directory, by key; the three standard ones must be there."""
    templates = {path.stem: load_template(path) for path in sorted(directory.glob("*.toml"))}
    missing = [key for key in REQUIRED if key not in templates]
    if missing:
        raise TemplateError(f"Raumvorlagen in {directory}: es fehlt {', '.join(missing)}.toml")
    return templates
