"""Check-in as tried at the door: only on the session's day, the short code read out and
typed, undoing a mistaken check-in, and search results that say forum and attendance mode."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts.models import StaffRole
from orchestrator.attendance.checkin_codes import (
    grouped,
    normalise_short_code,
    short_code,
)
from orchestrator.attendance.models import CheckInUndo
from orchestrator.participants.assignment import set_override
from orchestrator.participants.models import AttendanceMode, Person
from tests.staff_helpers import ORGANISER, add_staff
from tests.test_checkin import World, make_world, rows, scan
from tests.test_staff_login import CHECKIN, SLUG, Staff, berlin, csrf_of, live

__all__ = ["live"]

UNDO = f"{CHECKIN}/undo"
DOOR = "einlass@example.org"


def typed(live: Staff, person: Person) -> str:
    return short_code(live.settings.require("secret_key"), person.id)


@pytest.mark.asyncio
async def test_a_check_in_outside_the_sessions_day_is_refused(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    for day in (17, 19):
        live.clock.set(berlin(9, 12, day=day))
        token = await live.signed_in()  # a staff session lasts 12 hours
        refused = await scan(live, token, typed(live, world.anna))
        assert (refused["status"], refused["outcome"]) == ("409", "wrong_day")
        assert refused["message"] == (
            "Diese Sitzung findet am Donnerstag, 18. März 2027 statt: "
            "Einchecken ist nur an diesem Tag möglich."
        )
    page = await live.client.post(
        CHECKIN,
        data={"csrf_token": token, "session": "opening", "person_id": str(world.anna.id)},
    )
    assert page.status_code == 409 and "nur an diesem Tag" in page.text
    assert await rows(session) == []
    live.clock.set(berlin(23, 59))  # late on the day itself: still the day
    token = await live.signed_in()
    assert (await scan(live, token, typed(live, world.anna)))["outcome"] == "checked_in"


@pytest.mark.asyncio
async def test_the_short_code_is_accepted_however_it_is_typed(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    code = typed(live, world.anna)
    assert len(code) == 8 and not set(code) & set("0O1IL")
    assert normalise_short_code(f" {code[:4].lower()} - {code[4:].lower()} ") == code
    spoken = grouped(code).lower()  # "k7qm 3xpa", as read out and typed
    done = await scan(live, token, spoken)
    assert (done["status"], done["outcome"], done["name"]) == ("200", "checked_in", "Anna Muster")
    form = {"csrf_token": token, "session": "opening", "code": f"{code[:4]}-{code[4:]}"}
    again = await live.client.post(CHECKIN, data=form)
    assert again.status_code == 200 and "war bereits um 09:12 eingecheckt" in again.text
    [row] = await rows(session)
    assert (row.person_id, row.method) == (world.anna.id, "qr")


@pytest.mark.asyncio
async def test_look_alikes_and_foreign_short_codes_are_refused(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    code = typed(live, world.anna)
    look_alike = await scan(live, token, "O" + code[1:])
    assert (look_alike["status"], look_alike["outcome"]) == ("422", "look_alike")
    assert "kein 0, O, 1, I oder L" in look_alike["message"]
    foreign = await scan(live, token, typed(live, world.stranger))  # another conference's
    assert (foreign["status"], foreign["outcome"]) == ("422", "invalid_code")
    other = next(c for c in "ABCDEFGH" if c != code[0])
    wrong = await scan(live, token, other + code[1:])
    assert wrong["outcome"] == "invalid_code"
    too_short = await scan(live, token, code[:7])
    assert too_short["outcome"] == "invalid_code"
    assert await rows(session) == []


async def _door(live: Staff, session: AsyncSession) -> str:
    await add_staff(session, DOOR, StaffRole.CHECKIN, conference=SLUG)
    return await live.signed_in(DOOR)


@pytest.mark.asyncio
async def test_undo_removes_the_check_in_and_keeps_who_and_when(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    token = await _door(live, session)  # check-in staff may undo their own mistakes
    await scan(live, token, typed(live, world.anna))
    listed = (await live.client.get(CHECKIN)).text
    assert f'action="/admin/{SLUG}/checkin/undo"' in listed
    live.clock.set(berlin(9, 14))
    form = {"csrf_token": csrf_of(listed), "session": "opening", "person_id": str(world.anna.id)}
    undone = await live.client.post(UNDO, data={**form, "reason": "falsche Person gescannt"})
    assert undone.status_code == 200
    assert "Der Check-in von Anna Muster (09:12) ist rückgängig gemacht." in undone.text
    assert await rows(session) == []
    [kept] = (await session.execute(select(CheckInUndo))).scalars().all()
    assert (kept.person_id, kept.arrived_at, kept.undone_at) == (
        world.anna.id,
        berlin(9, 12),
        berlin(9, 14),
    )
    assert kept.undone_by.startswith(DOOR) and kept.reason == "falsche Person gescannt"
    twice = await live.client.post(UNDO, data=form)
    assert twice.status_code == 409 and "nicht eingecheckt" in twice.text
    no_token = await live.client.post(
        UNDO, data={k: v for k, v in form.items() if k != "csrf_token"}
    )
    assert no_token.status_code == 403
    again = await scan(live, token, typed(live, world.anna))  # and may check in again
    assert again["outcome"] == "checked_in"


@pytest.mark.asyncio
async def test_search_shows_forum_and_mode_in_the_workspace_frame(
    live: Staff, session: AsyncSession
) -> None:
    world: World = await make_world(session)
    world.anna.attendance_mode = AttendanceMode.IN_PERSON
    await set_override(session, world.conference, world.anna.id, "sprache", force=True)
    await session.commit()
    await live.signed_in(ORGANISER)
    found = await live.client.get(CHECKIN, params={"q": "Muster", "session": "forums"})
    assert "Im Forum Sprache" in found.text and "vor Ort" in found.text
    nav = found.text.split('class="section-nav"', 1)[1].split("</nav>", 1)[0]
    assert f'<a href="{CHECKIN}" aria-current="page">Einlass</a>' in nav
    assert f'href="/admin/{SLUG}/attendance"' in nav  # organisers see their other sections
