"""/ : where a lost visitor lands. Staff go on to their workspace; participants learn where
their personal link is and whom to ask for it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from orchestrator.conferences import repository as conferences
from orchestrator.conferences.models import ConferenceStatus
from orchestrator.web import pages
from orchestrator.web.deps import DbSession
from orchestrator.web.staff.auth import current

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, db: DbSession) -> Response:
    """Signed-in staff: their workspace. Everyone else: a short page in their language."""
    if await current(request, db) is not None:
        return RedirectResponse("/admin", status_code=303, headers=pages.PRIVATE_HEADERS)
    listed = await conferences.list_all(db)
    contacts = sorted(
        {
            (c.organiser, c.organiser_email)
            for c in listed
            if c.organiser_email and c.status is not ConferenceStatus.ARCHIVED
        }
    )
    language = pages.pick_language(request)
    title = pages.translate("Conference orchestrator", language)
    return pages.page("home.html", language, contacts=contacts, site_title=title)
