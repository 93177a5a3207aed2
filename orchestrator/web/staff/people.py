"""The people of a conference (/admin/{slug}/people): the list with search and filters, a
person's page with their mail and calendar, add, edit, remove, resend the invitation.

Each form posts (CSRF-checked) and redirects back with `?done=` naming what happened; the
list's filters are a GET form, so a filtered list is a link. Importing a file is in
people_import.py.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.conferences.models import Conference
from orchestrator.erasure import erase
from orchestrator.errors import ConflictError, InvalidInputError
from orchestrator.followups import after_change
from orchestrator.invitations import person_mail
from orchestrator.mail.rendering import message_domain
from orchestrator.participants import listing, repository, service
from orchestrator.participants.schemas import PersonIn, PersonPatch
from orchestrator.web.deps import AppSettings, ConferenceBySlug, DbSession, Mail
from orchestrator.web.staff import people_forms as forms
from orchestrator.web.staff import people_import
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffRoute,
    StaffSession,
    now_of,
    require_organiser,
    require_staff_session,
)
from orchestrator.web.staff.workspace import workspace_page

router = APIRouter(
    prefix="/admin/{slug}/people",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)
router.include_router(people_import.router)  # before /{person_id}: "import" is no id

Organiser = Annotated[StaffSession, Depends(require_organiser)]
DONE = frozenset({"added", "saved", "removed", "resent", "unchanged", "unsendable", "imported"})
FILTER_NAMES = ("q", "forum", "waiting", "rsvp", "invitation", "role", "mode", "consent")


def _count(request: Request, name: str) -> int:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() and len(value) < 7 else 0


def _query(request: Request) -> str:
    """The list's filters as a query string ending in "&" (for the pager's links)."""
    kept = [(key, value) for key in FILTER_NAMES if (value := request.query_params.get(key, ""))]
    return urlencode(kept) + "&" if kept else ""


def _base(conference: Conference) -> str:
    return f"/admin/{conference.slug}/people"


def _page(
    request: Request, name: str, staff: StaffSession, conference: Conference, **context: Any
) -> HTMLResponse:
    status = context.pop("status_code", 200)
    done = request.query_params.get("done", "")
    return workspace_page(
        request,
        f"staff/{name}.html",
        staff,
        status,
        conference=conference,
        section="people",
        area=_base(conference),
        done=done if done in DONE else "",
        forms=forms,
        forum_options=[(forum.key, forum.title) for forum in conference.forums],
        counts={key: _count(request, key) for key in ("created", "updated", "skipped")},
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def people_list(
    request: Request, db: DbSession, staff: Organiser, conference: ConferenceBySlug
) -> HTMLResponse:
    """The list: search, filters and paging from the query string."""
    query = request.query_params
    filters = forms.filters_of(query)
    found = await listing.search(db, conference.id, filters, forms.page_of(query))
    return _page(
        request, "people", staff, conference, filters=filters, found=found, query=_query(request)
    )


@router.get("/new", response_class=HTMLResponse)
async def new_person(
    request: Request, staff: Organiser, conference: ConferenceBySlug
) -> HTMLResponse:
    return _page(request, "person_form", staff, conference, form=forms.PersonForm(), person=None)


async def _submitted(request: Request) -> dict[str, str]:
    return {key: value for key, value in (await request.form()).items() if isinstance(value, str)}


def _forum_keys(conference: Conference) -> set[str]:
    return {forum.key for forum in conference.forums}


@router.post("/new", response_class=HTMLResponse)
async def add_person(
    request: Request, db: DbSession, staff: CsrfChecked, conference: ConferenceBySlug, mail: Mail
) -> Response:
    """Add a person with the API's rules; on a problem, the form again with it marked."""
    data, form = forms.parse_person(await _submitted(request), _forum_keys(conference), new=True)
    if isinstance(data, PersonIn):
        try:
            person = await service.create(db, conference, data)
        except ConflictError:
            form.errors["email"] = "taken"
        else:
            await after_change(db, conference, mail, now_of(request), person_ids=[person.id])
            return RedirectResponse(f"{_base(conference)}/{person.id}?done=added", 303)
    return _page(request, "person_form", staff, conference, form=form, person=None, status_code=422)


@router.get("/{person_id}", response_class=HTMLResponse)
async def person_page(
    request: Request,
    person_id: uuid.UUID,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
    settings: AppSettings,
) -> HTMLResponse:
    """Everything about one person: data, forums, answer, mails, calendar."""
    person = await repository.get(db, conference.id, person_id)
    return _page(
        request,
        "person",
        staff,
        conference,
        person=person,
        personal_url=service.personal_url(settings.base_url, person),
        mails=await person_mail.mail_history(db, person.id),
        calendar=await person_mail.calendar_state(db, person.id),
    )


@router.get("/{person_id}/edit", response_class=HTMLResponse)
async def edit_person(
    request: Request,
    person_id: uuid.UUID,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
) -> HTMLResponse:
    person = await repository.get(db, conference.id, person_id)
    form = forms.form_of_person(person)
    return _page(request, "person_form", staff, conference, form=form, person=person)


@router.post("/{person_id}/edit", response_class=HTMLResponse)
async def save_person(
    request: Request,
    person_id: uuid.UUID,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    mail: Mail,
) -> Response:
    """Change a person with the API's rules; calendars follow (after_change)."""
    person = await repository.get(db, conference.id, person_id)
    data, form = forms.parse_person(await _submitted(request), _forum_keys(conference), new=False)
    if isinstance(data, PersonPatch):
        try:
            await service.update(db, conference, person.id, data)
        except ConflictError:
            form.errors["email"] = "taken"
        else:
            await after_change(db, conference, mail, now_of(request), person_ids=[person.id])
            return RedirectResponse(f"{_base(conference)}/{person.id}?done=saved", 303)
    return _page(
        request, "person_form", staff, conference, form=form, person=person, status_code=422
    )


@router.get("/{person_id}/remove", response_class=HTMLResponse)
async def confirm_removal(
    request: Request,
    person_id: uuid.UUID,
    db: DbSession,
    staff: Organiser,
    conference: ConferenceBySlug,
) -> HTMLResponse:
    """Ask before removing: what goes with the person."""
    person = await repository.get(db, conference.id, person_id)
    return _page(request, "person_remove", staff, conference, person=person)


@router.post("/{person_id}/remove")
async def remove_person(
    person_id: uuid.UUID, db: DbSession, _staff: CsrfChecked, conference: ConferenceBySlug
) -> Response:
    """Remove the person and every trace of them (as the API's DELETE does)."""
    await erase(db, conference, person_id)
    return RedirectResponse(f"{_base(conference)}?done=removed", 303)


@router.post("/{person_id}/resend")
async def resend(
    request: Request,
    person_id: uuid.UUID,
    db: DbSession,
    _staff: CsrfChecked,
    conference: ConferenceBySlug,
    settings: AppSettings,
) -> Response:
    """Queue the invitation (with the personal link and calendar) again through the outbox."""
    try:
        queued = await person_mail.resend_invitation(
            db,
            conference,
            person_id,
            base_url=settings.base_url,
            message_domain=message_domain(settings.mail_from),
            sender=settings.mail_from,
            now=now_of(request),
        )
    except InvalidInputError:  # an address no mail can be built for
        return RedirectResponse(f"{_base(conference)}/{person_id}?done=unsendable", 303)
    done = "resent" if queued else "unchanged"
    return RedirectResponse(f"{_base(conference)}/{person_id}?done={done}", 303)
