"""Shared fixtures: a migrated database per test on SQLite and PostgreSQL, sample data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import get_by_slug
from orchestrator.conferences.service import import_file as import_conference
from orchestrator.config import Settings, prepare
from orchestrator.db import create_engine, session_factory
from orchestrator.web.app import create_app
from tests.databases import (
    REQUIRE_POSTGRES,
    PostgresTemplate,
    SqliteTemplate,
    postgres_available,
)
from tests.live import serve

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE_TOML = (
    Path(__file__).resolve().parent.parent / "orchestrator" / "demo" / "conference-heinsberg.toml"
)


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
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
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


API_KEY = "test-api-key-0123456789abcdef"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own database and data directory, no .env file read."""
    return prepare(
        Settings(
            _env_file=None,
            data_dir=tmp_path / "data",
            database_url=database_url,
            api_key=API_KEY,
            base_url="http://orchestrator.test",
        )
    )


@pytest_asyncio.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app served by uvicorn on loopback, with the staff key."""
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        ) as client,
    ):
        yield client


async def load_sample(session: AsyncSession) -> Conference:
    """The sample conference in the database, committed, with sessions and forums loaded."""
    outcome = await import_conference(session, SAMPLE_TOML)
    await session.commit()
    return await get_by_slug(session, outcome.conference.slug)
