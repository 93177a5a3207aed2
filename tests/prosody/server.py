"""A prosody of the lane's own on loopback: rendered config, own data directory, own ports.

Runs Debian's prosody (0.12, Lua 5.4) as the `prosody` user when the tests run as root,
with the vendored Jitsi modules; `restart` stops and starts it on the same ports and data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.prosody.compose import ProsodyEnv
from tests.prosody.config import Layout, render, vendored_plugins

REQUIRE_PROSODY = bool(os.environ.get("CI") or os.environ.get("ORCH_TEST_REQUIRE_PROSODY"))
PROSODY_USER = "prosody"
# Debian's lua-basexx installs for Lua 5.2 only; prosody 0.12 runs Lua 5.4.
LUA_PATH = "/usr/share/lua/5.2/?.lua;;"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prosody_missing() -> str | None:
    """None when this machine can run the lane, else what is missing."""
    for program in ("prosody", "prosodyctl"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install prosody, see .ci/run)"
    if not Path("/usr/share/lua/5.2/basexx.lua").exists():
        return "lua-basexx is not installed (see .ci/run)"
    plugins = vendored_plugins()
    if not (plugins / "jitsi-meet" / "mod_auth_token.lua").exists():
        return f"no vendored Jitsi prosody modules at {plugins} (ORCH_TEST_JITSI_PROSODY_PLUGINS)"
    return None


def _user() -> dict[str, Any]:
    """Popen arguments that run the child as the prosody user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": PROSODY_USER, "group": PROSODY_USER, "extra_groups": []}


class ProsodyServer:
    """One prosody process at a time on fixed loopback ports; restartable."""

    def __init__(
        self, env: ProsodyEnv, orchestrator_url: str, webhook_secret: str, http_port: int = 0
    ) -> None:
        self.env = env
        root = Path(tempfile.mkdtemp(prefix="orch-prosody-"))
        self.layout = Layout(
            root=root,
            c2s_port=free_port(),
            http_port=http_port or free_port(),
            orchestrator_url=orchestrator_url,
            plugins=vendored_plugins(),
        )
        self._environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LUA_PATH": LUA_PATH,
            "ORCH_JITSI_WEBHOOK_SECRET": webhook_secret,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._write_files()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.layout.http_port}"

    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.layout.http_port}/xmpp-websocket"

    def _write_files(self) -> None:
        for path, text in render(self.env, self.layout).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        self.layout.data.mkdir(exist_ok=True)
        for path in [self.layout.root, *self.layout.root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if os.geteuid() == 0:
            shutil.chown(self.layout.data, PROSODY_USER, PROSODY_USER)
        self._prosodyctl(
            "register", "focus", self.env.auth_domain, self.env.focus_password or "focus-password"
        )

    def _prosodyctl(self, *args: str) -> None:
        command = ["prosodyctl", "--config", str(self.layout.config_file), *args]
        result = subprocess.run(
            command,
            env=self._environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            **_user(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"prosodyctl {args[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        self._starts += 1
        log = self.layout.root / f"prosody-{self._starts}.log"
        command = ["prosody", "--config", str(self.layout.config_file), "-F"]
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=self.layout.root,
                env=self._environ,
                stdout=output,
                stderr=subprocess.STDOUT,
                **_user(),
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"prosody exited on start:\n{self.log()[-3000:]}")
            try:
                response = httpx.get(f"{self.http_url}/room-census", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if response.status_code == httpx.codes.OK:
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"prosody did not answer within {START_TIMEOUT} s:\n{self.log()[-3000:]}"
        )

    def stop(self) -> None:
        """SIGTERM, and killed if it has not exited after 15 seconds."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None

    def crash(self) -> None:
        """SIGKILL: prosody forgets its rooms and sends nothing on the way out."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def log(self) -> str:
        """Everything every run of this prosody logged, oldest first."""
        logs = sorted(self.layout.root.glob("prosody-*.log"), key=lambda p: p.stat().st_mtime)
        return "".join(path.read_text(encoding="utf-8", errors="replace") for path in logs)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.layout.root, ignore_errors=True)
