"""Answers and attendance (/admin/{slug}/attendance) over real HTTP, on both backends.

The RSVP funnel against the people stored, the table with its filters and pages, the
organiser's decisions on one entry (excuse, override, undo a check-in; each kept with who,
when and why), the downloads, and who may open the area at all.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts.models import StaffRole
from orchestrator.attendance import checkin, overrides
from orchestrator.attendance.answers import Funnel, rsvp_funnel
from orchestrator.attendance.models import CheckIn, CheckInUndo
from orchestrator.conferences.models import Conference
from orchestrator.participants.assignment import set_override
from orchestrator.participants.models import AttendanceMode, Person, Role, Rsvp
from tests.conftest import load_sample
from tests.staff_helpers import NOW, ORGANISER, add_staff
from tests.test_staff_login import SLUG, Staff, berlin, csrf_of, live

__all__ = ["live"]

AREA = f"/admin/{SLUG}/attendance"
OTHER = "andere-2027"
OTHER_ORGANISER = "andere@example.org"
DOOR = "einlass@example.org"


@dataclass
class World:
    conference: Conference
    people: dict[str, Person]


async def make_world(session: AsyncSession) -> World:
    """Five people with every kind of answer (one not invited), a room system, two forums."""
    conference = await load_sample(session)
    session.add(Conference(slug=OTHER, title="Eine andere Konferenz"))
    answers = {
        "anna": Rsvp.ACCEPTED,
        "bert": Rsvp.DECLINED,
        "carla": Rsvp.NEEDS_ACTION,
        "dora": Rsvp.TENTATIVE,
        "emil": Rsvp.NEEDS_ACTION,
    }
    people: dict[str, Person] = {}
    for name, rsvp in answers.items():
        person = Person(
            conference_id=conference.id,
            email=f"{name}@example.org",
            first_name=name.capitalize(),
            last_name="Muster",
            rsvp=rsvp,
            invited_at=None if name == "emil" else NOW,
            attendance_mode=AttendanceMode.IN_PERSON if name == "anna" else AttendanceMode.ONLINE,
        )
        session.add(person)
        people[name] = person
    device = Person(conference_id=conference.id, email="raum@example.org", invited_at=NOW)
    device.role = Role.ROOM_SYSTEM
    session.add(device)
    await session.flush()
    await set_override(session, conference, people["anna"].id, "sprache", force=True)
    await set_override(session, conference, people["bert"].id, "werte", force=True)
    await session.commit()
    return World(conference, people)


async def check_in(session: AsyncSession, world: World, name: str, key: str = "opening") -> None:
    await checkin.check_in(
        session, world.conference, world.people[name].id, key, "search", berlin(9, 5)
    )
    await session.commit()


def entry(world: World, name: str, key: str = "opening") -> str:
    return f"{AREA}/entry/{world.people[name].id}/{key}"


def names_in_table(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r'<th scope="row">([^<]+)', body)


@pytest.mark.asyncio
async def test_funnel_figures_match_the_data(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    funnel = await rsvp_funnel(session, world.conference.id)
    assert funnel == Funnel(people=5, invited=4, accepted=1, tentative=1, declined=1)
    assert funnel.no_answer == 1 and funnel.not_invited == 1
    await live.signed_in()
    page = await live.client.get(AREA)
    assert page.status_code == 200
    text = page.text
    for figure in ("Eingeladen: 4", "Zugesagt: 1", "Vielleicht: 1", "Abgesagt: 1"):
        assert figure in text
    assert "Noch keine Antwort: 1" in text
    assert 'aria-labelledby="funnel-accepted-label" max="4" value="1"' in text
    assert "1 von 4 Eingeladenen" in text  # the bar's figures as text
    assert '<a href="/admin/ik-heinsberg-2027/attendance" aria-current="page">' in text


@pytest.mark.asyncio
async def test_table_lists_rows_and_filters_them(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    await check_in(session, world, "anna")
    await live.signed_in()
    everything = names_in_table((await live.client.get(AREA)).text)
    assert everything.count("Anna Muster") == 3  # two plenaries and her forum's round
    assert "raum@example.org" not in everything  # room systems are not people
    present = await live.client.get(AREA, params={"session": "opening", "status": "present"})
    assert names_in_table(present.text) == ["Anna Muster"]
    assert "Einträge 1 bis 1 von 1" in present.text
    forum = await live.client.get(AREA, params={"session": "forums", "forum": "werte"})
    assert names_in_table(forum.text) == ["Bert Muster"]
    wrong = await live.client.get(AREA, params={"session": "no-such-session"})
    assert wrong.status_code == 422
    assert 'aria-describedby="f-session-error"' in wrong.text
    assert "Bitte wählen Sie eine Sitzung dieser Konferenz." in wrong.text
    beyond = await live.client.get(AREA, params={"page": "9"})  # only one page: that one
    assert beyond.status_code == 200 and "Anna Muster" in names_in_table(beyond.text)


@pytest.mark.asyncio
async def test_excuse_and_override_keep_the_reason_and_the_actor(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    url = entry(world, "carla")
    page = await live.client.get(url)
    assert page.status_code == 200 and "Carla Muster" in page.text
    empty = await live.client.post(f"{url}/excuse", data={"csrf_token": token, "reason": " "})
    assert empty.status_code == 422
    assert 'aria-describedby="excuse-reason-error excuse-reason-hint"' in empty.text
    assert await overrides.audit_trail(session, world.conference) == []
    done = await live.client.post(
        f"{url}/excuse", data={"csrf_token": token, "reason": "krank, am Montag angerufen"}
    )
    assert done.status_code == 303 and done.headers["location"] == f"{url}?done=excused"
    shown = (await live.client.get(done.headers["location"])).text
    assert "Die Person ist für diese Sitzung entschuldigt." in shown
    assert "krank, am Montag angerufen" in shown and ORGANISER in shown
    no_status = await live.client.post(
        f"{url}/override", data={"csrf_token": token, "status": "", "reason": "Liste"}
    )
    assert no_status.status_code == 422 and 'aria-describedby="f-status-error"' in no_status.text
    changed = await live.client.post(
        f"{url}/override",
        data={"csrf_token": token, "status": "present", "reason": "stand auf der Papierliste"},
    )
    assert changed.status_code == 303
    trail = await overrides.audit_trail(session, world.conference)
    assert [(e.status.value, e.reason, e.person_name) for e in trail] == [
        ("excused", "krank, am Montag angerufen", "Carla Muster"),
        ("present", "stand auf der Papierliste", "Carla Muster"),
    ]
    assert all(e.created_by.startswith(ORGANISER) for e in trail)
    row = names_in_table((await live.client.get(AREA, params={"status": "present"})).text)
    assert row == ["Carla Muster"]
    no_token = await live.client.post(f"{url}/excuse", data={"reason": "ohne Token"})
    assert no_token.status_code == 403
    assert len(await overrides.audit_trail(session, world.conference)) == 2


@pytest.mark.asyncio
async def test_undo_check_in_from_the_entry(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    await check_in(session, world, "anna")
    token = await live.signed_in()
    url = entry(world, "anna")
    assert "Check-in rückgängig machen" in (await live.client.get(url)).text
    undone = await live.client.post(
        f"{url}/undo-checkin", data={"csrf_token": token, "reason": "falsche Sitzung"}
    )
    assert undone.status_code == 303
    fresh = select(CheckIn).execution_options(populate_existing=True)
    assert (await session.execute(fresh)).scalars().all() == []
    [kept] = (await session.execute(select(CheckInUndo))).scalars().all()
    assert (kept.person_id, kept.reason, kept.arrived_at) == (
        world.people["anna"].id,
        "falsche Sitzung",
        berlin(9, 5),
    )
    assert kept.undone_by.startswith(ORGANISER)
    page = (await live.client.get(undone.headers["location"])).text
    assert "Der Check-in ist rückgängig gemacht." in page and "falsche Sitzung" in page
    again = await live.client.post(f"{url}/undo-checkin", data={"csrf_token": token})
    assert again.status_code == 422 and "nicht eingecheckt" in again.text


@pytest.mark.asyncio
async def test_exports_download_with_the_rows(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    await check_in(session, world, "anna")
    await live.signed_in()
    page = (await live.client.get(AREA, params={"session": "opening"})).text
    assert f'href="{AREA}/export.csv?session=opening"' in page
    got = await live.client.get(f"{AREA}/export.csv", params={"session": "opening"})
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == (
        'attachment; filename="ik-heinsberg-2027-anwesenheit.csv"'
    )
    lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig")), delimiter=";"))
    assert lines[0][0] == "Name"
    assert sorted(line[0] for line in lines[1:]) == [
        f"{name} Muster" for name in ("Anna", "Bert", "Carla", "Dora", "Emil")
    ]
    assert [line[9] for line in lines[1:] if line[0] == "Anna Muster"] == ["anwesend"]
    book = await live.client.get(f"{AREA}/export.xlsx")
    assert book.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "ik-heinsberg-2027-anwesenheit.xlsx" in book.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(book.content))["Anwesenheit"]
    names = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert names.count("Anna Muster") == 3 and len(names) == 5 * 2 + 2


@pytest.mark.asyncio
async def test_only_the_conference_organisers_open_the_area(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    await add_staff(session, OTHER_ORGANISER, StaffRole.ORGANISER, conference=OTHER)
    await add_staff(session, DOOR, StaffRole.CHECKIN, conference=SLUG)
    anonymous = await live.client.get(AREA)
    assert anonymous.status_code == 303 and "/admin/login" in anonymous.headers["location"]
    for email in (OTHER_ORGANISER, DOOR):
        token = await live.signed_in(email)
        for url in (AREA, f"{AREA}/export.csv", f"{AREA}/export.xlsx", entry(world, "anna")):
            assert (await live.client.get(url)).status_code == 403, (email, url)
        posted = await live.client.post(
            f"{entry(world, 'anna')}/excuse", data={"csrf_token": token, "reason": "x"}
        )
        assert posted.status_code == 403
    door = await live.client.get(f"/admin/{SLUG}/checkin")  # still signed in as DOOR
    assert door.status_code == 200
    nav = door.text.split('class="section-nav"', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r"<a [^>]*>([^<]+)</a>", nav) == ["Einlass"]
    assert await overrides.audit_trail(session, world.conference) == []
    csrf_of(door.text)
