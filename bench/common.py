"""What the benchmark scripts in bench/ share: their setup, not their measurements.

- `SAMPLE`: the demo conference every bench imports.
- `add_database_url` and `scratch_database`: the `--database-url` option and the fresh,
  empty database behind it. Without a URL a SQLite file in a temporary directory (or in
  the directory given); with a PostgreSQL URL the server is used only to create a scratch
  database `orch_bench_<random>` for the run and to drop it (`WITH (FORCE)`) afterwards.
- `load_client`: the separate load-generator process of the HTTP benches (the bench script
  itself, started with `--client JOB_FILE`), stopped with a `null` line on its stdin.
- `percentile`: a latency percentile in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

SAMPLE = Path(__file__).resolve().parents[1] / "orchestrator" / "demo" / "conference-heinsberg.toml"


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """The `--database-url` option: a PostgreSQL server; None means a fresh SQLite file."""
    parser.add_argument("--database-url", default=None, help="PostgreSQL server to use")


async def _admin(url: str, sql: str) -> None:
    """Run one statement on the server of `url`, outside a transaction (CREATE/DROP DATABASE)."""
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def scratch_database(url: str | None, directory: Path | None = None) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database on `url`'s server.

    The SQLite file goes into `directory`, or into a temporary directory removed afterwards.
    """
    if url is None:
        if directory is not None:
            yield f"sqlite:///{directory / 'bench.sqlite3'}"
            return
        with tempfile.TemporaryDirectory(prefix="bench-") as name:
            yield f"sqlite:///{Path(name) / 'bench.sqlite3'}"
        return
    name = f"orch_bench_{uuid.uuid4().hex[:10]}"
    await _admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def load_client(
    script: str, job: object, directory: Path, limit: int = 2**16
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`script --client JOB_FILE` in its own process, with `job` as JSON in `directory`.

    It reads one JSON command a line from stdin and answers each with one line on stdout;
    a `null` line stops it. `limit` bounds the length of an answer line.
    """
    job_file = directory / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        "--client",
        str(job_file),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=limit,
    )
    assert process.stdin is not None
    try:
        yield process
    finally:
        process.stdin.write(b"null\n")
        await process.stdin.drain()
        await process.wait()


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile of `values` (seconds), in milliseconds; 0 for no values."""
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000
