"""Any mail as a person would see it, rendered on demand and never queued.

The organiser picks a kind (the invitation kinds of `invitations.service` and the reminder
kinds of `scheduling.handling`), a person of the conference (or a made-up sample person) and
a language. The mail is rendered by the same templates and the same agenda lines as the real
ones (`mail.rendering.render`, `scheduling.handling.render_reminder`, `scheduling.agenda`);
an update marks its first line as changed, a cancellation withdraws the first line, so that
both show what such a mail looks like.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, SessionKind
from orchestrator.mail.rendering import LANGUAGES, Rendered, one_line, render
from orchestrator.participants.models import Language, Person
from orchestrator.participants.service import personal_url
from orchestrator.scheduling.agenda import Agenda, kind_context
from orchestrator.scheduling.handling import TEMPLATES, render_reminder
from orchestrator.scheduling.models import ReminderKind
from orchestrator.scheduling.planning import PlannedReminder, load_seats

INVITATION_KINDS = ("invitation", "update", "cancellation")
REMINDER_KINDS = {TEMPLATES[kind]: kind for kind in ReminderKind}  # template name -> kind
PREVIEW_KINDS = (*INVITATION_KINDS, *REMINDER_KINDS)
SAMPLE_TOKEN = "beispiel-persoenlicher-link"  # noqa: S105 (a placeholder, not a secret)


class PreviewError(ValueError):
    """This mail cannot be shown for this person (the reason is for the organiser)."""


def sample_person(conference: Conference, language: str) -> Person:
    """A made-up person with no seat, never added to the session."""
    return Person(
        conference_id=conference.id,
        email="erika.mustermann@example.org",
        first_name="Erika",
        last_name="Mustermann",
        language=Language(language),
        token=SAMPLE_TOKEN,
    )


async def find_person(session: AsyncSession, conference_id: int, email: str) -> Person | None:
    """A person of this conference by email address (case-insensitive)."""
    wanted = email.strip().lower()
    query = select(Person).where(
        Person.conference_id == conference_id, func.lower(Person.email) == wanted
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


def _planned(
    conference: Conference, kind: ReminderKind, session_ids: list[int], now: datetime
) -> PlannedReminder:
    """A reminder as if it were due now, about the person's first session (or first round)."""
    session_id: int | None = None
    if kind in (ReminderKind.BEFORE_SESSION, ReminderKind.STARTING_NOW):
        session_id = session_ids[0] if session_ids else None
    elif kind is ReminderKind.CHOOSE_FORUM:
        rounds = [s for s in conference.sessions if s.kind is SessionKind.BREAKOUT_ROUND]
        rounds.sort(key=lambda item: (item.starts_at, item.id))
        if not rounds:
            raise PreviewError("kein Forumsblock im Programm")
        session_id = rounds[0].id
    return PlannedReminder(kind, session_id, None, now, now, "preview")


async def preview(
    session: AsyncSession,
    conference: Conference,
    kind: str,
    language: str,
    person: Person,
    *,
    base_url: str,
    now: datetime,
) -> Rendered:
    """The mail of this kind for this person in this language (sessions and forums loaded)."""
    if kind not in PREVIEW_KINDS or language not in LANGUAGES:
        raise PreviewError(f"no mail {kind}.{language}")
    seats = (await load_seats(session, conference.id, [person.id])).get(person.id, {})
    items = Agenda(conference, base_url).items(person, seats)
    agenda = list(items.values())
    page = personal_url(base_url, person)
    context: dict[str, Any] = {
        "name": one_line(person.display_name),
        "conference": conference,
        "timezone": conference.timezone,
        "personal_url": page,
        "results_url": f"{page}#ergebnisse",
        "agenda": agenda,
        "cancelled": [],
    }
    if kind in INVITATION_KINDS:
        if kind == "update" and agenda:
            context["agenda"] = [replace(agenda[0], changed=True), *agenda[1:]]
        if kind == "cancellation":
            context |= {"agenda": agenda[1:], "cancelled": agenda[:1]}
        return render(kind, language, context)
    reminder = REMINDER_KINDS[kind]
    planned = _planned(conference, reminder, list(items), now)
    try:
        context |= kind_context(conference, planned, items, now)
    except ValueError as error:
        raise PreviewError(str(error)) from error
    return render_reminder(kind, language, context)
