"""Creating, changing and removing people; shaping them for the API."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, Forum
from orchestrator.db import utcnow
from orchestrator.errors import ConflictError, InvalidInputError
from orchestrator.participants import repository
from orchestrator.participants.models import AssignmentStatus, ForumChoice, Person
from orchestrator.participants.schemas import PersonFields, PersonIn, PersonOut, PersonPatch

log = logging.getLogger(__name__)


def personal_url(base_url: str, person: Person) -> str:
    return f"{base_url}/p/{person.token}"


def _forums_by_key(conference: Conference, keys: list[str]) -> list[Forum]:
    known = {forum.key: forum for forum in conference.forums}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise InvalidInputError(f"forum_choices: unbekanntes Forum {', '.join(unknown)}")
    return [known[key] for key in keys]


async def set_choices(session: AsyncSession, person: Person, forums: list[Forum]) -> None:
    """Replace the person's ranked choices (first in the list = rank 1)."""
    person.choices.clear()
    # Delete the old rows before inserting the new: (person, rank) and (person, forum)
    # are unique, and the unit of work would otherwise insert first.
    await session.flush()
    person.choices.extend(
        ForumChoice(forum=forum, rank=rank) for rank, forum in enumerate(forums, start=1)
    )


async def _apply(
    session: AsyncSession, person: Person, fields: PersonFields, conference: Conference
) -> None:
    values = fields.model_dump(exclude_unset=True, exclude={"forum_choices"})
    consent_changed = "consent" in values and values["consent"] != bool(person.consent)
    for name, value in values.items():
        if value is None:
            raise InvalidInputError(f"{name}: darf nicht leer sein")
        setattr(person, name, value)
    if consent_changed:
        # Stamped both ways: consent False with a date is a withdrawal (no more mail),
        # False without one is an invitee who has not answered yet.
        person.consent_at = utcnow()
    if fields.forum_choices is not None:
        await set_choices(session, person, _forums_by_key(conference, fields.forum_choices))


async def create(session: AsyncSession, conference: Conference, data: PersonIn) -> Person:
    """Add a person; one email per conference."""
    if await repository.find_by_email(session, conference.id, data.email) is not None:
        raise ConflictError(f"{data.email} ist bereits eingeladen.")
    person = Person(conference_id=conference.id, email=data.email, choices=[], assignments=[])
    session.add(person)
    await _apply(session, person, data, conference)
    await session.flush()
    log.info("participants.created", extra={"conference": conference.slug})
    return await repository.get(session, conference.id, person.id)


async def update(
    session: AsyncSession, conference: Conference, person_id: uuid.UUID, patch: PersonPatch
) -> Person:
    """Change a person's fields; a new email must still be unique in the conference."""
    person = await repository.get(session, conference.id, person_id)
    changed_email = patch.email is not None and patch.email != person.email
    if changed_email and await repository.find_by_email(session, conference.id, patch.email or ""):
        raise ConflictError(f"{patch.email} ist bereits eingeladen.")
    await _apply(session, person, patch, conference)
    await session.flush()
    session.expire(person)
    return await repository.get(session, conference.id, person_id)


async def delete(session: AsyncSession, conference: Conference, person_id: uuid.UUID) -> None:
    """Remove a person with their choices and assignments."""
    person = await repository.get(session, conference.id, person_id)
    await session.delete(person)
    await session.flush()


def to_out(person: Person, base_url: str) -> PersonOut:
    assignment = next(iter(person.assignments), None)
    assigned = assignment is not None and assignment.status is AssignmentStatus.ASSIGNED
    return PersonOut(
        id=person.id,
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        organisation=person.organisation,
        role=person.role,
        attendance_mode=person.attendance_mode,
        language=person.language,
        consent=person.consent,
        forum_choices=[choice.forum.key for choice in person.choices],
        forum=assignment.forum.key if assigned and assignment and assignment.forum else None,
        assignment_status=assignment.status if assignment else None,
        assignment_source=assignment.source if assignment else None,
        personal_url=personal_url(base_url, person),
        created_at=person.created_at,
        updated_at=person.updated_at,
    )
