"""The organiser's home and a conference's overview: figures and the next step, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.progress import NextStep, Progress, next_step, progress_of
from orchestrator.participants import assignment
from orchestrator.participants.models import ForumChoice, Person
from tests.conftest import load_sample
from tests.test_staff_login import SLUG, Staff
from tests.test_staff_login import live as live

DAY = datetime(2027, 3, 18, 8, tzinfo=UTC)


def test_next_step_follows_the_organisers_order() -> None:
    before = DAY.replace(month=2)
    steps = [
        (Progress(), before),
        (Progress(sessions=3), before),
        (Progress(sessions=3, forums=5, people=10, unplaced=4), before),
        (Progress(sessions=3, people=10, invited=6), before),
        (Progress(sessions=3, people=10, invited=10, outbox={"failed": 2}), before),
        (Progress(sessions=3, people=10, invited=10, starts_at=DAY, ends_at=DAY), before),
        (
            Progress(sessions=3, people=10, invited=10, starts_at=DAY, ends_at=DAY),
            DAY.replace(hour=7),
        ),
        (Progress(sessions=3, people=10, invited=10, starts_at=DAY, ends_at=DAY), DAY),
    ]
    assert [next_step(progress, now) for progress, now in steps] == [
        NextStep.ADD_SESSIONS,
        NextStep.IMPORT_PEOPLE,
        NextStep.ASSIGN_FORUMS,
        NextStep.SEND_INVITATIONS,
        NextStep.FIX_FAILED_MAIL,
        NextStep.WAIT_FOR_ANSWERS,
        NextStep.RUN_THE_DAY,
        NextStep.WRITE_RESULTS,
    ]


async def _people(session: AsyncSession, count: int, choosing: int | None = None) -> None:
    """`count` participants, the first `choosing` of them (all by default) with a choice."""
    conference = await load_sample(session)
    forum = conference.forums[0]
    for n in range(count):
        person = Person(conference_id=conference.id, email=f"p{n}@example.org", first_name=f"P{n}")
        if n < (count if choosing is None else choosing):
            person.choices = [ForumChoice(forum_id=forum.id, rank=1)]
        session.add(person)
    await session.commit()


@pytest.mark.asyncio
async def test_figures_count_people_seats_and_answers(session: AsyncSession) -> None:
    await _people(session, 7, choosing=5)
    conference = await load_sample(session)
    before = await progress_of(session, conference)
    assert (before.people, before.invited, before.assigned, before.unplaced) == (7, 0, 0, 5)
    assert before.no_choice == 2
    await assignment.run_assignment(session, conference)
    await session.commit()
    after = await progress_of(session, await load_sample(session))
    assert after.assigned + after.waitlisted == 5 and after.unplaced == 0
    assert after.no_choice == 2
    assert after.rsvp == {"needs_action": 7}


@pytest.mark.asyncio
async def test_home_and_overview_show_the_next_step(live: Staff, session: AsyncSession) -> None:
    await _people(session, 3)
    await live.signed_in()
    home = await live.client.get("/admin")
    assert home.status_code == 200
    assert f'<a href="/admin/{SLUG}">' in home.text
    assert "Nächster Schritt" in home.text
    assert "3 Personen haben noch kein Forum" in home.text
    page = await live.client.get(f"/admin/{SLUG}")
    assert page.status_code == 200
    assert 'aria-current="page">Übersicht</a>' in page.text
    assert '<span class="figure-number">3</span> Personen auf der Liste' in page.text
    english = await live.client.get(f"/admin/{SLUG}?lang=en")
    assert "3 people have no forum yet" in english.text
    assert (await live.client.get("/admin/no-such-conference")).status_code == 404
