"""Forum assignment: the balancing run and organiser overrides (SPEC §4.2)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from orchestrator.followups import after_change
from orchestrator.participants import assignment, repository, service
from orchestrator.participants.schemas import ForumKey, PersonOut
from orchestrator.web.deps import AppClock, AppSettings, ConferenceBySlug, DbSession, Mail

router = APIRouter(prefix="/conferences/{slug}", tags=["assignments"])


class OverrideIn(BaseModel):
    forum: ForumKey | None = Field(description="forum key, or null for the waiting list")
    force: bool = Field(default=False, description="place even when the forum is full")


@router.post("/assignments/run")
async def run_assignment(
    conference: ConferenceBySlug,
    session: DbSession,
    settings: AppSettings,
    mail: Mail,
    clock: AppClock,
    overflow: Annotated[Literal["most_room", "waitlist"] | None, Query()] = None,
) -> dict[str, Any]:
    """Run the balancer; organiser overrides and self-service choices are kept."""
    report = await assignment.run_assignment(
        session, conference, overflow=overflow or settings.assignment_overflow
    )
    await after_change(session, conference, mail, clock())
    return report.as_dict()


@router.put("/participants/{person_id}/assignment")
async def override_assignment(
    person_id: uuid.UUID,
    body: OverrideIn,
    conference: ConferenceBySlug,
    session: DbSession,
    settings: AppSettings,
    mail: Mail,
    clock: AppClock,
) -> PersonOut:
    """Put a person into a forum (or onto the waiting list); the balancer keeps it."""
    await assignment.set_override(session, conference, person_id, body.forum, force=body.force)
    await after_change(session, conference, mail, clock(), person_ids=[person_id])
    person = await repository.get(session, conference.id, person_id)
    await session.refresh(person, ["assignments"])
    return service.to_out(person, settings.base_url)


@router.delete("/participants/{person_id}/assignment", status_code=status.HTTP_204_NO_CONTENT)
async def clear_override(
    person_id: uuid.UUID,
    conference: ConferenceBySlug,
    session: DbSession,
    mail: Mail,
    clock: AppClock,
) -> None:
    """Hand the person back to the balancer (their seat is free until the next run)."""
    await assignment.clear_override(session, conference, person_id)
    await after_change(session, conference, mail, clock(), person_ids=[person_id])
