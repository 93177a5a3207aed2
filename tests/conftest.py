"""Shared fixtures: a migrated database per test on SQLite and PostgreSQL, sample data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator.db import create_engine, session_factory
from tests.databases import (
    REQUIRE_POSTGRES,
    PostgresTemplate,
    SqliteTemplate,
    postgres_available,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE_TOML = Path(__file__).resolve().parent.parent / "orchestrator" / "demo" / \
    "conference-heinsberg.toml"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    problem = postgres_available()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    template = PostgresTemplate()
    yield template
    template.close()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """URL of a fresh, migrated database of its own for this test, on each backend."""
    if request.param == "sqlite":
        template: SqliteTemplate = request.getfixturevalue("sqlite_template")
        yield template.copy(tmp_path)
        return
    pg: PostgresTemplate = request.getfixturevalue("postgres_template")
    name, url = await pg.copy()
    try:
        yield url
    finally:
        await pg.drop(name)


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest_asyncio.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
