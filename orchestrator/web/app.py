"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from orchestrator import __version__
from orchestrator.config import Settings, get_settings
from orchestrator.db import create_engine, session_factory
from orchestrator.web import errors, health
from orchestrator.web.api import assignments, conferences, participants
from orchestrator.web.deps import require_staff


def _api() -> APIRouter:
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_staff)])
    api.include_router(conferences.router)
    api.include_router(participants.router)
    api.include_router(assignments.router)
    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the engine is created at startup and disposed at shutdown."""
    settings = settings or get_settings()
    engine = create_engine(settings.resolved_database_url, pool_pre_ping=True)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(
        title="Konferenz-Orchestrator",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    errors.install(app)
    app.include_router(_api())
    app.include_router(health.router)
    return app
