"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from orchestrator import __version__
from orchestrator.clock import Clock, system_clock
from orchestrator.config import Settings, get_settings
from orchestrator.db import create_engine, session_factory
from orchestrator.rooms.templates import load_templates
from orchestrator.web import (
    admin_checkin,
    admin_mail,
    docs,
    errors,
    health,
    home,
    join,
    pages,
    participant,
    staff,
)
from orchestrator.web.api import (
    assignments,
    attendance,
    conferences,
    invitations,
    mail,
    participants,
    rooms,
)
from orchestrator.web.deps import require_jitsi, require_staff
from orchestrator.web.jitsi import events, reservation
from orchestrator.web.staff import account, conference, forums, people, team, workspace
from orchestrator.web.staff import attendance as attendance_area
from orchestrator.web.staff import mail as staff_mail
from orchestrator.worker import run_worker


def _api() -> APIRouter:
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_staff)])
    api.include_router(conferences.router)
    api.include_router(participants.router)
    api.include_router(assignments.router)
    api.include_router(rooms.router)
    api.include_router(invitations.router)
    api.include_router(mail.router)
    api.include_router(attendance.router)
    return api


def _jitsi() -> APIRouter:
    """Callbacks from prosody (reservations, event_sync), authenticated by the shared secret."""
    callbacks = APIRouter(prefix="/jitsi", dependencies=[Depends(require_jitsi)])
    callbacks.include_router(reservation.router)
    callbacks.include_router(events.router)
    return callbacks


def create_app(
    settings: Settings | None = None, clock: Clock = system_clock, *, with_worker: bool = False
) -> FastAPI:
    """Build the app; the engine (and, if asked, the worker) live as long as the server."""
    settings = settings or get_settings()
    templates = load_templates(settings.room_templates_dir)
    url = settings.resolved_database_url
    # A ping per checkout guards against a restarted PostgreSQL; SQLite files need none.
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = (
            asyncio.create_task(run_worker(settings, stop_event=stop, clock=clock))
            if with_worker
            else None
        )
        async with events.intake(  # event_sync writer, folder, census cross-check
            _app,
            fold_interval=settings.attendance_fold_seconds,
            census_interval=settings.attendance_census_seconds,
        ):
            yield
        stop.set()
        if worker is not None:
            await worker
        await engine.dispose()

    app = FastAPI(
        title="Konferenz-Orchestrator",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # web/docs.py serves /docs from the package (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.room_templates = templates
    app.state.clock = clock
    errors.install(app)
    app.include_router(_api())
    app.include_router(_jitsi())
    app.include_router(join.router)
    app.include_router(participant.router)
    app.include_router(staff.router)  # /admin/login, /admin/logout (session + CSRF)
    app.include_router(admin_checkin.router)
    app.include_router(admin_mail.router)  # after check-in: /admin/{slug}/checkin wins
    app.include_router(account.router)
    app.include_router(conference.router)  # /admin/new before /admin/{slug}
    app.include_router(team.router)
    app.include_router(forums.router)
    app.include_router(attendance_area.router)
    app.include_router(staff_mail.router)  # /admin/{slug}/mail: invitations and mail
    app.include_router(people.router)
    app.include_router(workspace.router)  # last: /admin/{slug} must not shadow the above
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(home.router)
    app.mount("/static", pages.static_files(), name="static")
    return app
