"""One error hierarchy; each error knows its HTTP status and a stable code."""

from __future__ import annotations

from typing import Any


class OrchestratorError(Exception):
    """Base of every error we raise on purpose; the message is user-facing (German)."""

    status_code = 400
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(OrchestratorError):
    status_code = 404
    code = "not_found"


class ConflictError(OrchestratorError):
    status_code = 409
    code = "conflict"


class InvalidInputError(OrchestratorError):
    status_code = 422
    code = "invalid_input"


class ImportRejectedError(InvalidInputError):
    """An import with bad rows; `details` carries the full row report."""

    code = "import_rejected"


class ConfigurationError(OrchestratorError):
    status_code = 500
    code = "configuration"


class DatabaseUnavailableError(OrchestratorError):
    status_code = 503
    code = "database_unavailable"
