"""The `orchestrator` command as a user runs it: real processes, real files, real database."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_TOML

ORCHESTRATOR = str(Path(sys.executable).with_name("orchestrator"))


def _env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(ORCH_DATA_DIR=str(data_dir), ORCH_ENV_FILE=str(data_dir / "none.env"))
    if database_url:
        env["ORCH_DATABASE_URL"] = database_url
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORCHESTRATOR, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return _env(tmp_path / "data", database_url)


def test_import_assign_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    first = cli(env, "conference", "import", str(SAMPLE_TOML))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "ik-heinsberg-2027"
    assert cli(env, "conference", "import", str(SAMPLE_TOML)).returncode == 0
    people = tmp_path / "people.csv"
    people.write_text(
        "E-Mail;Vorname;Nachname;Forum 1;Forum 2\n"
        "a@example.org;Anna;Müller;sprache;werte\n"
        "b@example.org;Björn;Becker;werte;arbeit\n",
        encoding="utf-8-sig",
    )
    imported = cli(env, "participants", "import", "ik-heinsberg-2027", str(people))
    assert imported.returncode == 0, imported.stderr
    assert "2 neu" in imported.stdout
    assigned = cli(env, "forums", "assign", "ik-heinsberg-2027")
    assert assigned.returncode == 0, assigned.stderr
    assert "2 Erstwunsch" in assigned.stdout


def test_bad_rows_exit_non_zero_with_row_numbers(env: dict[str, str], tmp_path: Path) -> None:
    assert cli(env, "conference", "import", str(SAMPLE_TOML)).returncode == 0
    people = tmp_path / "people.csv"
    people.write_text("email,first_name\nok@example.org,Ok\nbroken,Bad\n", encoding="utf-8")
    result = cli(env, "participants", "import", "ik-heinsberg-2027", str(people))
    assert result.returncode == 1
    assert "Zeile 3" in result.stderr and "Traceback" not in result.stderr
    skipped = cli(env, "participants", "import", "ik-heinsberg-2027", str(people), "--skip-invalid")
    assert skipped.returncode == 0 and "1 neu" in skipped.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_friendly_errors(env: dict[str, str], tmp_path: Path) -> None:
    missing = cli(env, "conference", "import", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and missing.stderr.startswith("Fehler: ")
    broken = tmp_path / "broken.toml"
    broken.write_text("[conference]\nslug = 'x'\n", encoding="utf-8")
    invalid = cli(env, "conference", "import", str(broken))
    assert invalid.returncode == 1 and "conference.slug" in invalid.stderr
    unknown = cli(env, "forums", "assign", "no-such-conference")
    assert unknown.returncode == 1 and "no-such-conference" in unknown.stderr
    for result in (missing, invalid, unknown):
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, f"postgresql://nobody@127.0.0.1:{_free_port()}/none")
    result = cli(env, "db", "upgrade")
    assert result.returncode == 1
    assert result.stderr.startswith("Fehler: Datenbank nicht erreichbar")
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli(_env(tmp_path / "data"), "serve", "--port", str(port))
    assert result.returncode == 1 and f"Port {port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_placeholder_secret_refused_outside_development(tmp_path: Path) -> None:
    env = _env(tmp_path / "data") | {"ORCH_API_KEY": "changeme"}
    refused = cli(env, "db", "upgrade")
    assert refused.returncode == 1 and "ORCH_API_KEY" in refused.stderr
    allowed = cli(env | {"ORCH_ENV": "development"}, "db", "upgrade")
    assert allowed.returncode == 0, allowed.stderr


def test_demo_serves_the_sample_conference(tmp_path: Path) -> None:
    """The README's first command: demo on the embedded default, then curl the API."""
    port = _free_port()
    env = _env(tmp_path / "data")
    process = subprocess.Popen(
        [ORCHESTRATOR, "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process)
        key = (tmp_path / "data" / "secrets" / "api_key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        conferences = httpx.get(f"{base}/api/v1/conferences", headers=headers).json()
        assert [c["slug"] for c in conferences] == ["ik-heinsberg-2027"]
        assert len(conferences[0]["forums"]) == 5
        people = httpx.get(
            f"{base}/api/v1/conferences/ik-heinsberg-2027/participants", headers=headers
        ).json()
        assert people["total"] == 301  # 300 generated and the organiser
        assert sum(1 for p in people["items"] if p["forum"]) > 0
        sink = tmp_path / "data" / "mail"
        deadline = time.monotonic() + 60  # the in-process worker delivers to the local sink
        while len(list(sink.glob("*.eml"))) < 301 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(list(sink.glob("*.eml"))) == 301
        page = httpx.get(people["items"][0]["personal_url"])  # the demo's own base URL
        assert page.status_code == 200 and "Integrationskonferenz" in page.text
        password = (tmp_path / "data" / "secrets" / "demo_organiser_password").read_text().strip()
        with httpx.Client(base_url=base) as browser:
            form = browser.get("/admin/login")
            token = re.search(r'name="csrf_token" value="([^"]*)"', form.text)
            assert token is not None
            login = {"email": "organisation@example.org", "password": password}
            signed_in = browser.post("/admin/login", data={**login, "csrf_token": token[1]})
            assert signed_in.status_code == 303
            assert "ik-heinsberg-2027" in browser.get("/admin").text
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "curl -H 'Authorization: Bearer" in output
    assert output.count("Persönliche Seite") == 1  # each banner line once
    assert f"Anmeldung:      organisation@example.org, Passwort {password}" in output
    # The banner is the last thing on the console: no per-mail or per-request lines after it.
    assert output.strip().splitlines()[-1].strip() == "Beenden mit Strg+C / stop with Ctrl+C"


def _wait_healthy(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo exited: {process.communicate()[0]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("demo did not become healthy")
