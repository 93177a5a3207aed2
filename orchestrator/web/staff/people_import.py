"""Importing a participant list in the browser: upload, preview, then import.

The uploaded file waits server-side (participants/import_preview.py) under a random name
bound to the conference; the preview says which columns were recognised and which rows are
bad (by Excel row number); "import" stores all rows, or with the box ticked only the good
ones, then deletes the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.conferences.models import Conference
from orchestrator.errors import ImportRejectedError, InvalidInputError, NotFoundError
from orchestrator.followups import after_change
from orchestrator.participants import importing
from orchestrator.participants.import_preview import MAX_BYTES, UploadStore, preview
from orchestrator.web.deps import AppSettings, ConferenceBySlug, DbSession, Mail
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffRoute,
    StaffSession,
    now_of,
    require_organiser,
)
from orchestrator.web.staff.workspace import workspace_page
from orchestrator.web.uploads import UploadTooLargeError, read_limited

router = APIRouter(prefix="/import", route_class=StaffRoute)
Organiser = Annotated[StaffSession, Depends(require_organiser)]


def store_of(settings: AppSettings) -> UploadStore:
    return UploadStore(Path(settings.data_dir) / "uploads")


Store = Annotated[UploadStore, Depends(store_of)]


def _render(
    request: Request,
    staff: StaffSession,
    conference: Conference,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("problem", "")
    context.setdefault("checked", None)
    return workspace_page(
        request,
        "staff/people_import.html",
        staff,
        status_code,
        conference=conference,
        section="people",
        area=f"/admin/{conference.slug}/people",
        max_mb=MAX_BYTES // (1024 * 1024),
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def upload_form(
    request: Request, staff: Organiser, conference: ConferenceBySlug
) -> HTMLResponse:
    return _render(request, staff, conference, upload=None)


@router.post("", response_class=HTMLResponse)
async def upload(
    request: Request,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    store: Store,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Keep the file and show its preview; an unreadable file is refused at once."""
    filename = file.filename or "upload.csv"
    try:
        data = await read_limited(file, MAX_BYTES)
        preview(filename, data, set())  # readable, with an email column?
    except UploadTooLargeError:
        return _render(request, staff, conference, 413, upload=None, problem="too_large")
    except InvalidInputError as error:
        return _render(request, staff, conference, 422, upload=None, problem=error.message)
    name = store.put(conference.id, filename, data)
    return RedirectResponse(f"/admin/{conference.slug}/people/import/{name}", 303)


@router.get("/{name}", response_class=HTMLResponse)
async def preview_page(
    request: Request, name: str, staff: Organiser, conference: ConferenceBySlug, store: Store
) -> HTMLResponse:
    """What the import would do: columns recognised and not, every bad row."""
    try:
        kept = store.get(conference.id, name)
    except NotFoundError:
        return _render(request, staff, conference, 404, upload=None, problem="gone")
    forum_keys = {forum.key for forum in conference.forums}
    found = preview(kept.filename, kept.data, forum_keys)
    return _render(request, staff, conference, upload=name, checked=found)


@router.post("/{name}", response_class=HTMLResponse)
async def run_import(
    request: Request,
    name: str,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    store: Store,
    mail: Mail,
    skip_invalid: Annotated[bool, Form()] = False,
) -> Response:
    """Import the kept file: all rows, or only the good ones if asked; then forget it."""
    try:
        kept = store.get(conference.id, name)
    except NotFoundError:
        return _render(request, staff, conference, 404, upload=None, problem="gone")
    try:
        report = await importing.import_file(
            db, conference, kept.filename, kept.data, skip_invalid=skip_invalid
        )
    except ImportRejectedError:
        found = preview(kept.filename, kept.data, {forum.key for forum in conference.forums})
        return _render(
            request, staff, conference, 422, upload=name, checked=found, problem="rejected"
        )
    await after_change(db, conference, mail, now_of(request))
    store.drop(name)
    counts = f"created={report.created}&updated={report.updated}&skipped={report.skipped}"
    return RedirectResponse(f"/admin/{conference.slug}/people?done=imported&{counts}", 303)
