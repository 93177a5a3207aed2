"""The one typed settings object (environment prefix ORCH_, SPEC §5)."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.errors import ConfigurationError

# Values that people copy from examples and forget to change.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "secret", "password", "please-change", "xxx"}
)
GENERATED_SECRETS = ("secret_key", "api_key", "jitsi_app_secret", "jitsi_webhook_secret")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every setting of the service; read from ORCH_* variables and an optional .env file."""

    model_config = SettingsConfigDict(
        env_prefix="ORCH_", env_file=os.environ.get("ORCH_ENV_FILE", ".env"), extra="ignore"
    )

    env: Environment = Environment.PRODUCTION
    data_dir: Path = Path("data")
    database_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    secret_key: str | None = None
    log_level: str = "INFO"

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    mail_from: str = "Konferenz-Orchestrator <noreply@localhost>"
    mail_concurrency: int = Field(default=4, ge=1, le=64)  # parallel SMTP connections
    mail_rate: float | None = Field(default=None, gt=0)  # messages per second, None: no cap
    # The worker's safety-net tick (it also wakes at each due time), and how often a waiting
    # worker tries for the PostgreSQL worker lock.
    worker_sweep_seconds: float = Field(default=60, gt=0)
    worker_lock_poll_seconds: float = Field(default=5, gt=0)

    jitsi_base_url: str = "https://meet.example.org"
    jitsi_app_id: str = "orchestrator"
    jitsi_app_secret: str | None = None
    jitsi_domain: str = "meet.jitsi"
    jitsi_prosody_url: str = "http://prosody:5280"
    jitsi_webhook_secret: str | None = None
    # MUC component of room JIDs (room@MUC); unset: muc.{jitsi_domain}, docker-jitsi-meet's
    # XMPP_MUC_DOMAIN default.
    jitsi_muc_domain: str | None = None
    # Seconds per prosody HTTP attempt (connect and read), and retries after the first attempt.
    jitsi_http_timeout: float = Field(default=3.0, gt=0)
    jitsi_http_retries: int = Field(default=2, ge=0, le=5)

    # room_templates/ of the source tree; the Docker image sets its own path.
    room_templates_dir: Path = Path(__file__).resolve().parents[1] / "room_templates"

    # Attendance: fold raw event_sync events into stays every N seconds (and right after
    # each write batch); cross-check with prosody's census every N seconds. Empty: off.
    attendance_fold_seconds: float | None = Field(default=5.0, gt=0)
    attendance_census_seconds: float | None = Field(default=60.0, gt=0)

    assignment_overflow: Literal["most_room", "waitlist"] = Field(default="most_room")

    @field_validator("base_url", "jitsi_base_url", "jitsi_prosody_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'orchestrator.sqlite3').resolve()}"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def mail_sink_dir(self) -> Path:
        return self.data_dir / "mail"

    def require(self, name: str) -> str:
        """Return a secret that `prepare` has filled in."""
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"Einstellung ORCH_{name.upper()} fehlt.")
        return str(value)


def _check_placeholders(settings: Settings) -> None:
    for name in GENERATED_SECRETS:
        value = getattr(settings, name)
        if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
            if settings.development:
                continue
            raise ConfigurationError(
                f"ORCH_{name.upper()} hat einen Platzhalterwert; setzen Sie ein echtes "
                f"Geheimnis oder lassen Sie die Variable leer (dann wird eines erzeugt). "
                f"ORCH_{name.upper()} is a placeholder; set a real secret or leave it unset."
            )


def _load_or_generate(settings: Settings, name: str) -> str:
    path = settings.secrets_dir / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    settings.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting at once must not both write a different secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def prepare(settings: Settings) -> Settings:
    """Refuse placeholder secrets, create the data directory, fill unset secrets from it."""
    _check_placeholders(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for name in GENERATED_SECRETS:
        if not getattr(settings, name):
            setattr(settings, name, _load_or_generate(settings, name))
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, prepared once."""
    return prepare(Settings())
