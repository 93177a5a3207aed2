"""Where a conference stands and what the organiser should do next (the workspace's home).

A handful of aggregate queries, each one GROUP BY over an indexed column, so the figures stay
cheap at 5,000 people. `next_step` reads them in the order an organiser works: programme,
people, forums, invitations, the day itself, the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.models import Conference, SessionKind, SessionStatus
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    ForumChoice,
    Person,
    Role,
    Rsvp,
)


class NextStep(StrEnum):
    ADD_SESSIONS = "add_sessions"
    IMPORT_PEOPLE = "import_people"
    ASSIGN_FORUMS = "assign_forums"
    SEND_INVITATIONS = "send_invitations"
    FIX_FAILED_MAIL = "fix_failed_mail"
    WAIT_FOR_ANSWERS = "wait_for_answers"
    RUN_THE_DAY = "run_the_day"
    WRITE_RESULTS = "write_results"


@dataclass
class Progress:
    """The figures of one conference."""

    people: int = 0
    invited: int = 0
    rsvp: dict[str, int] = field(default_factory=dict)
    assigned: int = 0
    waitlisted: int = 0
    unplaced: int = 0  # participants with choices but no seat or waiting place in a round
    no_choice: int = 0  # participants who chose no forum (a reminder asks them)
    outbox: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    forums: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def not_invited(self) -> int:
        return self.people - self.invited

    @property
    def answered(self) -> int:
        return self.rsvp.get(Rsvp.ACCEPTED, 0) + self.rsvp.get(Rsvp.DECLINED, 0)

    @property
    def mail_failed(self) -> int:
        return self.outbox.get(OutboxState.FAILED, 0)

    @property
    def mail_pending(self) -> int:
        states = (OutboxState.QUEUED, OutboxState.SENDING, OutboxState.RETRY)
        return sum(self.outbox.get(state, 0) for state in states)


def next_step(progress: Progress, now: datetime) -> NextStep:
    """The one thing to do next, in the order an organiser works."""
    if progress.sessions == 0:
        return NextStep.ADD_SESSIONS
    if progress.people == 0:
        return NextStep.IMPORT_PEOPLE
    if progress.forums and progress.unplaced:
        return NextStep.ASSIGN_FORUMS
    if progress.not_invited:
        return NextStep.SEND_INVITATIONS
    if progress.mail_failed:
        return NextStep.FIX_FAILED_MAIL
    if progress.ends_at is not None and now >= progress.ends_at:
        return NextStep.WRITE_RESULTS
    if progress.starts_at is not None and now.date() >= progress.starts_at.date():
        return NextStep.RUN_THE_DAY
    return NextStep.WAIT_FOR_ANSWERS


async def progress_of(session: AsyncSession, conference: Conference) -> Progress:
    """The figures of one conference (sessions and forums must be loaded)."""
    cid = conference.id
    running = [s for s in conference.sessions if s.status is not SessionStatus.CANCELLED]
    rounds = [s for s in running if s.kind is SessionKind.BREAKOUT_ROUND]
    found = Progress(
        sessions=len(running),
        forums=len(conference.forums),
        starts_at=min((s.starts_at for s in running), default=None),
        ends_at=max((s.ends_at for s in running), default=None),
    )
    people = select(Person.rsvp, func.count(), func.count(Person.invited_at)).where(
        Person.conference_id == cid
    )
    for rsvp, count, invited in await session.execute(people.group_by(Person.rsvp)):
        found.people += int(count)
        found.invited += int(invited)
        found.rsvp[str(rsvp)] = int(count)
    seats = (
        select(Assignment.status, func.count())
        .join(Person, Person.id == Assignment.person_id)
        .where(Person.conference_id == cid)
        .group_by(Assignment.status)
    )
    for status, count in await session.execute(seats):
        if status is AssignmentStatus.WAITLISTED:
            found.waitlisted = int(count)
        else:
            found.assigned = int(count)
    if rounds:
        seats_held = (
            select(func.count(Assignment.id))
            .where(Assignment.person_id == Person.id)
            .scalar_subquery()
        )
        chose = select(ForumChoice.id).where(ForumChoice.person_id == Person.id).exists()
        without_seat = select(func.count()).where(
            Person.conference_id == cid,
            Person.role == Role.PARTICIPANT,
            seats_held < len(rounds),
        )
        found.unplaced = int((await session.execute(without_seat.where(chose))).scalar_one())
        found.no_choice = int((await session.execute(without_seat.where(~chose))).scalar_one())
    mail = (
        select(OutboxMessage.state, func.count())
        .where(OutboxMessage.conference_id == cid)
        .group_by(OutboxMessage.state)
    )
    found.outbox = {str(state): int(count) for state, count in await session.execute(mail)}
    return found
