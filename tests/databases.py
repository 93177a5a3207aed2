"""Per-test databases: a fresh SQLite file or a fresh PostgreSQL database, both migrated.

A template is migrated once per test run; each test gets a copy, so tests never see each
other's rows and the app under test (uvicorn on loopback) can use its own connections.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from orchestrator.db import create_engine
from orchestrator.schema import upgrade

PG_ADMIN_URL = os.environ.get("ORCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
REQUIRE_POSTGRES = bool(os.environ.get("CI") or os.environ.get("ORCH_TEST_REQUIRE_POSTGRES"))


def _pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    url = make_url(PG_ADMIN_URL)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


class SqliteTemplate:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.sqlite3"
        run_blocking(_migrate(f"sqlite:///{self.path}"))

    def copy(self, directory: Path) -> str:
        target = directory / f"test-{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


class PostgresTemplate:
    def __init__(self) -> None:
        self.prefix = f"orch_t{os.getpid()}_"
        self.name = f"{self.prefix}template"
        run_blocking(self._create())

    async def _create(self) -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        await _admin(f'CREATE DATABASE "{self.name}"')
        await _migrate(_pg_url(self.name))

    async def copy(self) -> tuple[str, str]:
        name = f"{self.prefix}{uuid.uuid4().hex[:12]}"
        await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        return name, _pg_url(name)

    @staticmethod
    async def drop(name: str) -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        run_blocking(self.drop(self.name))


def postgres_available() -> str | None:
    """None if the server answers, else the reason."""
    try:
        run_blocking(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as error:
        return f"PostgreSQL at {PG_ADMIN_URL} unreachable: {error}"
    return None
