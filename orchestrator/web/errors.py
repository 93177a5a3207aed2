"""Turns our error hierarchy into JSON answers; never a stack trace to the client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from orchestrator.errors import OrchestratorError

log = logging.getLogger(__name__)


async def _orchestrator_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OrchestratorError)
    # `message` too: prosody shows that field of a refusal to the person joining.
    body: dict[str, object] = {
        "detail": error.message,
        "message": error.message,
        "code": error.code,
    }
    if error.details is not None:
        body["report" if error.code == "import_rejected" else "details"] = error.details
    return JSONResponse(body, status_code=error.status_code)


async def _integrity_error(_request: Request, error: Exception) -> JSONResponse:
    # A race lost against a unique constraint: the other writer won; nothing half done.
    log.warning("web.integrity_error", extra={"error": str(error).splitlines()[0]})
    return JSONResponse(
        {
            "detail": "Der Datensatz wurde gleichzeitig geändert oder existiert bereits.",
            "code": "conflict",
        },
        status_code=409,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OrchestratorError, _orchestrator_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
