"""Reading uploaded files with a size limit."""

from __future__ import annotations

from fastapi import UploadFile

from orchestrator.errors import OrchestratorError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class UploadTooLargeError(OrchestratorError):
    status_code = 413
    code = "upload_too_large"


async def read_limited(upload: UploadFile, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLargeError(f"Datei zu groß (höchstens {limit // (1024 * 1024)} MB).")
    return data
