"""Settings: defaults that run anywhere, generated secrets, placeholder refusal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.config import Settings, prepare
from orchestrator.db import async_url
from orchestrator.errors import ConfigurationError


def test_defaults_run_on_a_fresh_machine(tmp_path: Path) -> None:
    settings = prepare(Settings(_env_file=None, data_dir=tmp_path / "d"))
    assert settings.base_url == "http://127.0.0.1:8000"
    assert (
        settings.resolved_database_url == f"sqlite:///{(tmp_path / 'd').resolve()}/"
        "orchestrator.sqlite3"
    )
    assert settings.jitsi_domain == "meet.jitsi"


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = prepare(Settings(_env_file=None, data_dir=tmp_path))
    second = prepare(Settings(_env_file=None, data_dir=tmp_path))
    for name in ("api_key", "secret_key", "jitsi_app_secret", "jitsi_webhook_secret"):
        value = getattr(first, name)
        assert value and len(value) >= 43
        assert getattr(second, name) == value
        mode = stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode)
        assert mode == 0o600
    assert len({first.api_key, first.secret_key, first.jitsi_app_secret}) == 3


@pytest.mark.parametrize("value", ["changeme", "CHANGE-ME", " secret "])
def test_placeholders_refused_outside_development(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="ORCH_JITSI_APP_SECRET"):
        prepare(Settings(_env_file=None, data_dir=tmp_path, jitsi_app_secret=value))
    dev = prepare(
        Settings(_env_file=None, data_dir=tmp_path, jitsi_app_secret=value, env="development")
    )
    assert dev.jitsi_app_secret == value


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_DATABASE_URL", "postgresql://u@db:5432/orchestrator")
    monkeypatch.setenv("ORCH_SMTP_TLS", "starttls")
    monkeypatch.setenv("ORCH_BASE_URL", "https://konferenz.example.org/")
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.resolved_database_url == "postgresql://u@db:5432/orchestrator"
    assert settings.smtp_tls == "starttls"
    assert settings.base_url == "https://konferenz.example.org"


def test_plain_urls_map_to_async_drivers() -> None:
    assert async_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
