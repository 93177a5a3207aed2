"""A conference from the browser: create it by uploading its TOML file (/admin/new), change
its own fields (/admin/{slug}/settings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffRole, StaffUser
from orchestrator.conferences import durations, repository, service
from orchestrator.conferences.models import ConferenceMode
from orchestrator.conferences.schemas import ConferencePatch
from orchestrator.errors import InvalidInputError, OrchestratorError
from orchestrator.followups import after_change
from orchestrator.web import pages
from orchestrator.web.deps import ConferenceBySlug, DbSession, Mail, RoomTemplates
from orchestrator.web.staff.auth import (
    CsrfChecked,
    StaffContext,
    StaffForbidden,
    StaffRoute,
    StaffSession,
    now_of,
    require_organiser,
    require_staff_session,
    staff_language,
)
from orchestrator.web.staff.workspace import workspace_page
from orchestrator.web.uploads import read_limited

router = APIRouter(prefix="/admin", route_class=StaffRoute, include_in_schema=False)
MAX_TOML_BYTES = 1024 * 1024
FIELDS = ("title", "lead_theme", "organiser", "organiser_with_article", "organiser_email", "venue")


def _may_create(staff: StaffSession) -> None:
    principal = staff.principal
    if not (
        principal.organises_everything
        or any(g.role is StaffRole.ORGANISER for g in principal.grants)
    ):
        raise StaffForbidden


@router.get("/new", response_class=HTMLResponse)
async def new_page(request: Request, staff: StaffContext) -> HTMLResponse:
    """Upload a conference file (the shape of conference-heinsberg.toml)."""
    _may_create(staff)
    return workspace_page(request, "staff/conference_new.html", staff, error="")


@router.post("/new", response_class=HTMLResponse)
async def create(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    templates: RoomTemplates,
    mail: Mail,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Create the conference from the file; its organiser may update it the same way."""
    _may_create(staff)
    principal = staff.principal
    try:
        spec = service.parse_spec_bytes(await read_limited(file, MAX_TOML_BYTES), file.filename)
        existing = await repository.find_by_slug(db, spec.conference.slug)
        if existing is not None and not principal.organises(existing.id):
            raise InvalidInputError(
                f"Die Kennung „{spec.conference.slug}“ ist schon vergeben. / "
                f"The slug “{spec.conference.slug}” is taken."
            )
        outcome = await service.import_spec(db, spec, templates)
        await after_change(db, outcome.conference, mail, now_of(request))
    except OrchestratorError as problem:
        return workspace_page(
            request, "staff/conference_new.html", staff, 422, error=problem.message
        )
    user = await db.get(StaffUser, principal.user_id or 0)
    if user is not None and not principal.organises(outcome.conference.id):
        await accounts.add_user(
            db, user.email, StaffRole.ORGANISER, now_of(request),
            conference_id=outcome.conference.id,
        )  # fmt: skip
    done = "created" if outcome.created else "updated"
    location = f"/admin/{outcome.conference.slug}?done={done}"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


def _form(conference: object, language: str) -> dict[str, str]:
    values = {name: str(getattr(conference, name) or "") for name in FIELDS}
    values["mode"] = str(getattr(conference, "mode"))  # noqa: B009
    values["retention_days"] = str(getattr(conference, "retention_days"))  # noqa: B009
    offsets = list(getattr(conference, "reminder_offsets"))  # noqa: B009
    values["reminders"] = durations.describe(offsets, language)
    return values


@router.get(
    "/{slug}/settings",
    response_class=HTMLResponse,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)
async def settings_page(
    request: Request, staff: StaffContext, conference: ConferenceBySlug
) -> HTMLResponse:
    """The conference's own fields (not its programme)."""
    done = request.query_params.get("done", "")
    return workspace_page(
        request,
        "staff/conference_settings.html",
        staff,
        conference=conference,
        section="settings",
        form=_form(conference, staff_language(request, staff)),
        error="",
        field="",
        done=done if done == "saved" else "",
        modes=[mode.value for mode in ConferenceMode],
    )


@router.post(
    "/{slug}/settings",
    response_class=HTMLResponse,
    dependencies=[Depends(require_staff_session), Depends(require_organiser)],
)
async def save_settings(
    request: Request,
    db: DbSession,
    staff: CsrfChecked,
    conference: ConferenceBySlug,
    mail: Mail,
) -> Response:
    """Save the fields; reminders are re-planned and calendars updated where times change."""
    data = await request.form()
    form = {
        name: str(data.get(name, ""))[:600]
        for name in (*FIELDS, "mode", "retention_days", "reminders")
    }
    try:
        values: dict[str, object] = {name: form[name] for name in FIELDS}
        values["organiser_email"] = form["organiser_email"] or None
        values["mode"] = form["mode"]
        values["retention_days"] = form["retention_days"]
        values["reminders"] = durations.parse_offsets(form["reminders"])
        patch = ConferencePatch.model_validate(values)
        await service.update(db, conference.slug, patch)
        await after_change(db, conference, mail, now_of(request))
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        return _refused(request, staff, conference, form, field, problem["msg"])
    except InvalidInputError as error:
        field = str((error.details or {}).get("field", ""))
        return _refused(request, staff, conference, form, field, error.message)
    location = f"/admin/{conference.slug}/settings?done=saved"
    return RedirectResponse(location, status_code=303, headers=pages.PRIVATE_HEADERS)


def _refused(
    request: Request,
    staff: StaffSession,
    conference: object,
    form: dict[str, str],
    field: str,
    message: str,
) -> HTMLResponse:
    return workspace_page(
        request,
        "staff/conference_settings.html",
        staff,
        422,
        conference=conference,
        section="settings",
        form=form,
        error=message,
        field=field,
        done="",
        modes=[mode.value for mode in ConferenceMode],
    )
