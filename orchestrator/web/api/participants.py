"""Participants of a conference: paging and search, CRUD, file import."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile, status

from orchestrator.erasure import erase
from orchestrator.followups import after_change
from orchestrator.participants import importing, repository, service
from orchestrator.participants.schemas import PersonIn, PersonOut, PersonPage, PersonPatch
from orchestrator.web.deps import AppClock, AppSettings, ConferenceBySlug, DbSession, Mail
from orchestrator.web.uploads import read_limited

router = APIRouter(prefix="/conferences/{slug}/participants", tags=["participants"])


@router.get("")
async def list_participants(
    conference: ConferenceBySlug,
    session: DbSession,
    settings: AppSettings,
    q: Annotated[str | None, Query(max_length=200, description="name, email or org")] = None,
    forum: Annotated[str | None, Query(max_length=40, description="assigned forum key")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PersonPage:
    """`{"items": [...], "total": N}`, each with `email`, `forum` and `personal_url`."""
    people, total = await repository.page(
        session, conference.id, query=q, forum_key=forum, offset=offset, limit=limit
    )
    return PersonPage(
        items=[service.to_out(p, settings.base_url) for p in people],
        total=total,
        offset=offset,
        limit=limit,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_participant(
    data: PersonIn,
    conference: ConferenceBySlug,
    session: DbSession,
    settings: AppSettings,
    mail: Mail,
    clock: AppClock,
) -> PersonOut:
    person = await service.create(session, conference, data)
    await after_change(session, conference, mail, clock(), person_ids=[person.id])
    return service.to_out(person, settings.base_url)


@router.post("/import")
async def import_participants(
    conference: ConferenceBySlug,
    session: DbSession,
    file: Annotated[UploadFile, File(description="CSV (; or ,) or XLSX")],
    mail: Mail,
    clock: AppClock,
    skip_invalid: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Import a file; with bad rows nothing is imported (422 with every bad row) unless
    `skip_invalid` is set."""
    report = await importing.import_file(
        session,
        conference,
        file.filename or "upload.csv",
        await read_limited(file),
        skip_invalid=skip_invalid,
    )
    await after_change(session, conference, mail, clock())
    return report.as_dict()


@router.get("/{person_id}")
async def get_participant(
    person_id: uuid.UUID,
    conference: ConferenceBySlug,
    session: DbSession,
    settings: AppSettings,
) -> PersonOut:
    return service.to_out(
        await repository.get(session, conference.id, person_id), settings.base_url
    )


@router.patch("/{person_id}")
async def update_participant(
    person_id: uuid.UUID,
    patch: PersonPatch,
    conference: ConferenceBySlug,
    session: DbSession,
    settings: AppSettings,
    mail: Mail,
    clock: AppClock,
) -> PersonOut:
    await service.update(session, conference, person_id, patch)
    await after_change(session, conference, mail, clock(), person_ids=[person_id])
    return service.to_out(
        await repository.get(session, conference.id, person_id), settings.base_url
    )


@router.delete("/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_participant(
    person_id: uuid.UUID, conference: ConferenceBySlug, session: DbSession
) -> None:
    await erase(session, conference, person_id)
