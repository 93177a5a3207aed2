"""How the invited answered: the RSVP funnel of a conference (invited, accepted, declined...).

One GROUP BY over the conference's people. Room systems (the video devices of forum rooms)
are not people who answer and are left out; "invited" counts everyone an invitation was
queued for, and the answers count only among them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.participants.models import Person, Role, Rsvp


@dataclass(frozen=True)
class Funnel:
    """The figures of the answers' funnel; `no_answer` includes nobody who said maybe."""

    people: int = 0
    invited: int = 0
    accepted: int = 0
    tentative: int = 0
    declined: int = 0

    @property
    def no_answer(self) -> int:
        return self.invited - self.accepted - self.tentative - self.declined

    @property
    def not_invited(self) -> int:
        return self.people - self.invited


async def rsvp_funnel(session: AsyncSession, conference_id: int) -> Funnel:
    """Invited, accepted, maybe, declined (and so no answer) among a conference's people."""
    statement = (
        select(Person.rsvp, func.count(), func.count(Person.invited_at))
        .where(Person.conference_id == conference_id, Person.role != Role.ROOM_SYSTEM)
        .group_by(Person.rsvp)
    )
    people = invited = 0
    answers: dict[Rsvp, int] = {}
    for rsvp, count, counted_invited in await session.execute(statement):
        people += int(count)
        invited += int(counted_invited)
        answers[Rsvp(rsvp)] = int(counted_invited)
    return Funnel(
        people=people,
        invited=invited,
        accepted=answers.get(Rsvp.ACCEPTED, 0),
        tentative=answers.get(Rsvp.TENTATIVE, 0),
        declined=answers.get(Rsvp.DECLINED, 0),
    )
