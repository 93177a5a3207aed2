"""A child process under test, its output in a log file: killed hard or stopped cleanly."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


class LoggedProcess:
    """A process of its own (stdout and stderr in `log`), for the crash and takeover tests."""

    def __init__(
        self, args: list[str], log: Path, env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self) -> str:
        """The end of the output, for a failure message."""
        return self.output()[-3000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no finally."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, and the exit code; killed (-9) if it has not exited after 15 seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)
