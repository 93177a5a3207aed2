"""Personal join links /j/{token}/{room}: check, record, mint the JWT, redirect to Jitsi.

Answers: 302 to Jitsi when the person may enter now; otherwise an HTML page in the person's
language with the next step: 404 for an unknown token or room (nothing is revealed about
which), 403 when the room is not theirs, not open yet, over, or closed (the person is known
and the room exists; they may not enter it now). All answers are `no-store` and
`Referrer-Policy: no-referrer`, since the URL carries the personal token (and the redirect
target the JWT).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.config import Settings
from orchestrator.db import transaction
from orchestrator.jitsi.tokens import JitsiUser, mint
from orchestrator.participants.models import Role
from orchestrator.rooms.joining import (
    ClickRecorder,
    JoinDecision,
    JoinLookup,
    Refusal,
    RefusalContext,
    refusal_context,
    resolve_join,
    token_validity,
)
from orchestrator.rooms.templates import RoomTemplate
from orchestrator.web import pages

log = logging.getLogger(__name__)

STATUS = {
    Refusal.UNKNOWN_TOKEN: 404,
    Refusal.UNKNOWN_ROOM: 404,
    Refusal.NOT_ALLOWED: 403,
    Refusal.TOO_EARLY: 403,
    Refusal.TOO_LATE: 403,
    Refusal.CLOSED: 403,
}


@asynccontextmanager
async def recording_clicks(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan of this router: compile the page catalogues, run the click recorder."""
    pages.load_all()
    recorder = ClickRecorder(app.state.sessions)
    app.state.join_clicks = recorder
    async with recorder.running():
        yield


router = APIRouter(tags=["participants"], lifespan=recording_clicks)


def recorder(request: Request) -> ClickRecorder:
    """The app's click recorder (one that writes at once if the lifespan did not run)."""
    state = request.app.state
    if not hasattr(state, "join_clicks"):
        state.join_clicks = ClickRecorder(state.sessions)
    found: ClickRecorder = state.join_clicks
    return found


def lookup(request: Request) -> JoinLookup:
    """The app's batched person-and-room lookup (`app.state.join_lookup`)."""
    state = request.app.state
    if not hasattr(state, "join_lookup"):
        state.join_lookup = JoinLookup(state.sessions)
    found: JoinLookup = state.join_lookup
    return found


_fragments: dict[int, tuple[RoomTemplate, str]] = {}


def _fragment(template: RoomTemplate) -> str:
    """The template's `#config...` fragment, built once per template object."""
    cached = _fragments.get(id(template))
    if cached is None or cached[0] is not template:
        if len(_fragments) > 256:  # templates are reloaded only with a new app
            _fragments.clear()
        cached = _fragments[id(template)] = (template, template.fragment())
    return cached[1]


def jitsi_url(settings: Settings, decision: JoinDecision, now: datetime) -> str:
    """The Jitsi address with a freshly minted JWT and the template's config fragment."""
    person, room, template = decision.person, decision.room, decision.template
    assert person is not None and room is not None and template is not None
    not_before, expires = token_validity(decision, now)
    # Moderators and room systems skip the lobby; they are the ones who admit people.
    bypass = decision.moderator or person.role is Role.ROOM_SYSTEM
    user = JitsiUser(
        str(person.id), person.display_name, person.email, decision.moderator, lobby_bypass=bypass
    )
    token = mint(
        app_id=settings.jitsi_app_id,
        secret=settings.require("jitsi_app_secret"),
        domain=settings.jitsi_domain,
        room=room.name,
        user=user,
        not_before=not_before,
        expires=expires,
    )
    fragment = _fragment(template)
    url = f"{settings.jitsi_base_url}/{room.name}?jwt={quote(token, safe='')}"
    return f"{url}#{fragment}" if fragment else url


def _redirect(url: str) -> Response:
    return Response(status_code=302, headers={"Location": url, **pages.PRIVATE_HEADERS})


def _page_context(token: str, decision: JoinDecision, context: RefusalContext) -> dict[str, object]:
    zone = ZoneInfo(context.timezone)
    span = decision.window
    person = decision.person
    return {
        "reason": decision.refusal.value if decision.refusal else "",
        "site_title": context.conference_title,
        "name": person.display_name if person else "",
        "room_title": context.room_title,
        "timezone": context.timezone,
        "opens_at": span.opens_at.astimezone(zone) if span else None,
        "closes_at": span.closes_at.astimezone(zone) if span else None,
        "personal_url": f"/p/{token}" if person else None,
        "own_forum_title": context.own_forum_title,
        "own_join_url": f"/j/{token}/{context.own_room}" if person and context.own_room else None,
        "organiser": context.organiser,
        "organiser_email": context.organiser_email,
    }


async def _problem(
    request: Request, session: AsyncSession, token: str, decision: JoinDecision
) -> HTMLResponse:
    assert decision.refusal is not None
    context = await refusal_context(session, decision)
    known = decision.person.language.value if decision.person else None
    language = pages.pick_language(request, known)
    values = _page_context(token, decision, context)
    return pages.page("join_problem.html", language, STATUS[decision.refusal], **values)


def _log(decision: JoinDecision, room_name: str) -> None:
    extra = {
        "person": str(decision.person.id) if decision.person else None,
        "room": room_name[:80],
        "moderator": decision.moderator,
    }
    if decision.allowed:
        log.info("rooms.join_redirected", extra=extra)
    else:
        log.info("rooms.join_refused", extra={**extra, "reason": str(decision.refusal)})


@router.get(
    "/j/{token}/{room}",
    response_class=HTMLResponse,
    status_code=302,
    responses={
        302: {"description": "Redirect to the Jitsi room with a personal JWT"},
        403: {"description": "Not this person's room, or not open now (HTML page)"},
        404: {"description": "Unknown personal token or room (HTML page)"},
    },
)
async def join(token: str, room: str, request: Request) -> Response:
    """Check the personal link, record the click, and send the person on to Jitsi."""
    # App state is read here, not through web.deps: FastAPI runs sync dependencies in a
    # worker thread, and the hot path needs no unit of work (bench/join_burst.py).
    state = request.app.state
    settings: Settings = state.settings
    now: datetime = state.clock()
    decision = await resolve_join(lookup(request), token, room, state.room_templates, now)
    await recorder(request).record(decision, now)
    _log(decision, room)
    if decision.allowed:
        return _redirect(jitsi_url(settings, decision, now))
    async with transaction(state.sessions) as session:
        return await _problem(request, session, token, decision)
