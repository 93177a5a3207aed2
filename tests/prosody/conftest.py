"""The real-prosody lane: fails when prosody is missing on CI (or ORCH_TEST_REQUIRE_PROSODY=1),
skips elsewhere. Run it alone with `pytest tests/prosody` (or `-m prosody`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.prosody.lane import Lane, running_lane
from tests.prosody.server import REQUIRE_PROSODY, prosody_missing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.prosody)


@pytest.fixture(scope="session")
def prosody_installed() -> None:
    problem = prosody_missing()
    if problem:
        if REQUIRE_PROSODY:
            pytest.fail(f"the real-prosody lane cannot run: {problem}")
        pytest.skip(problem)


@pytest_asyncio.fixture
async def lane(
    prosody_installed: None,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> AsyncIterator[Lane]:
    async with running_lane(database_url, tmp_path / "data", sessions) as running:
        yield running
