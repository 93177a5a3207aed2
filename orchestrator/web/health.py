"""Operational endpoints: /healthz."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator import __version__

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """Liveness and database reachability (503 when the database does not answer)."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as error:
        log.warning("web.healthz_failed", extra={"error": str(error).splitlines()[0]})
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "version": __version__})


_METRICS = (
    (
        "orchestrator_outbox_messages",
        "Outgoing mails by state.",
        "SELECT state, count(*) FROM outbox GROUP BY state",
        "state",
    ),
    (
        "orchestrator_reminders",
        "Reminder rows by state.",
        "SELECT state, count(*) FROM reminders GROUP BY state",
        "state",
    ),
    (
        "orchestrator_jitsi_events",
        "Raw event_sync events by whether they are folded.",
        "SELECT CASE WHEN processed THEN 'folded' ELSE 'pending' END, count(*) "
        "FROM jitsi_events GROUP BY processed",
        "status",
    ),
)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: aggregate counts only, no personal data."""
    engine: AsyncEngine = request.app.state.engine
    lines = [f'orchestrator_info{{version="{__version__}"}} 1']
    async with engine.connect() as connection:
        for name, help_text, query, label in _METRICS:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            for key, count in (await connection.execute(text(query))).all():
                lines.append(f'{name}{{{label}="{key}"}} {count}')
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
