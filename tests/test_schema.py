"""The migrations and the models describe the same schema, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.models import Base
from orchestrator.schema import is_current

pytestmark = pytest.mark.asyncio


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_database_is_at_head(engine: AsyncEngine) -> None:
    assert await is_current(engine)
