"""In-person check-in: the domain rules and the staff page over real HTTP, on both backends."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance import checkin
from orchestrator.attendance.checkin_codes import checkin_code
from orchestrator.attendance.models import CheckIn
from orchestrator.conferences.models import Conference, SessionStatus
from orchestrator.participants.models import Person
from tests.conftest import load_sample
from tests.test_staff_login import CHECKIN, SLUG, Staff, berlin, live

__all__ = ["live"]  # the fixture, shared with the login tests

CHECKOUT = f"/admin/{SLUG}/checkout"
HOSTILE = '<script>alert("x")</script>'


@dataclass
class World:
    conference: Conference
    anna: Person
    hostile: Person
    stranger: Person  # registered for another conference


def _person(conference_id: int, email: str, first: str, last: str, org: str = "") -> Person:
    return Person(
        conference_id=conference_id,
        email=email,
        first_name=first,
        last_name=last,
        organisation=org,
    )


async def make_world(session: AsyncSession) -> World:
    """The sample conference with two people, and a person of another conference."""
    conference = await load_sample(session)
    other = Conference(slug="andere-2027", title="Eine andere Konferenz")
    session.add(other)
    await session.flush()
    anna = _person(conference.id, "anna@example.org", "Anna", "Muster", "Caritas Heinsberg")
    hostile = _person(conference.id, "evil@example.org", HOSTILE, "Ödland", '"><img src=x>')
    stranger = _person(other.id, "sam@example.net", "Sam", "Fremd")
    session.add_all([anna, hostile, stranger])
    await session.commit()
    return World(conference, anna, hostile, stranger)


async def rows(session: AsyncSession) -> Sequence[CheckIn]:
    fresh = select(CheckIn).order_by(CheckIn.id).execution_options(populate_existing=True)
    return (await session.execute(fresh)).scalars().all()


def code_of(live: Staff, person: Person) -> str:
    return checkin_code(live.settings.require("secret_key"), person.id)


async def scan(live: Staff, token: str, code: str, session_key: str = "opening") -> dict[str, str]:
    """Post a scanned code as checkin.js does (JSON with X-CSRF-Token)."""
    response = await live.client.post(
        CHECKIN,
        json={"code": code, "session": session_key},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    body: dict[str, str] = response.json()
    body["status"] = str(response.status_code)
    return body


@pytest.mark.asyncio
async def test_current_session_is_the_running_or_next_one_today(session: AsyncSession) -> None:
    conference = await load_sample(session)

    def key(moment: datetime) -> str | None:
        found = checkin.current_session(conference, moment)
        return found.key if found else None

    assert key(berlin(8, 0)) == "opening"
    assert key(berlin(9, 45)) == "opening"
    assert key(berlin(10, 50)) == "forums"
    assert key(berlin(12, 0)) == "forums"
    assert key(berlin(12, 45)) == "results"
    assert key(berlin(14, 30)) is None
    assert key(berlin(9, 0, day=17)) is None  # the day before: nothing today
    conference.sessions[1].status = SessionStatus.CANCELLED
    assert key(berlin(10, 50)) == "results"


@pytest.mark.asyncio
async def test_page_preselects_the_current_session(live: Staff, session: AsyncSession) -> None:
    await make_world(session)
    await live.signed_in()
    live.clock.set(berlin(11, 30))
    page = await live.client.get(CHECKIN)
    assert page.status_code == 200
    assert '<option value="forums" selected>' in page.text
    assert "Sitzung: 18.03.2027, 11:00–12:30 Foren" in page.text  # times with their date
    chosen = await live.client.get(f"{CHECKIN}?session=results")
    assert '<option value="results" selected>' in chosen.text
    assert 'aria-live="polite"' in page.text


@pytest.mark.asyncio
async def test_qr_code_checks_in_once(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    first = await scan(live, token, code_of(live, world.anna))
    assert first["status"] == "200" and first["outcome"] == "checked_in"
    assert first["message"] == "Anna Muster ist eingecheckt (09:12)."
    live.clock.advance(timedelta(minutes=5))
    again = await scan(live, token, code_of(live, world.anna))
    assert again["outcome"] == "already_checked_in"
    assert again["message"] == "Anna Muster war bereits um 09:12 eingecheckt."
    [row] = await rows(session)
    assert (row.person_id, row.method, row.left_at) == (world.anna.id, "qr", None)
    assert row.arrived_at == berlin(9, 12)


@pytest.mark.asyncio
async def test_forged_and_foreign_codes_are_refused(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    genuine = code_of(live, world.anna)
    forged = f"ci1.{world.hostile.id.hex}.{genuine.rsplit('.', 1)[1]}"
    refused = await scan(live, token, forged)
    assert (refused["status"], refused["outcome"]) == ("422", "invalid_code")
    assert refused["message"] == "Das ist kein gültiger Check-in-Code."
    foreign = await scan(live, token, code_of(live, world.stranger))
    assert (foreign["status"], foreign["outcome"]) == ("404", "unknown_person")
    unknown = await scan(live, token, genuine, session_key="no-such-session")
    assert unknown["outcome"] == "unknown_session"
    assert await rows(session) == []


@pytest.mark.asyncio
async def test_search_then_check_in_without_javascript(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    await live.signed_in()
    live.clock.set(berlin(11, 5))
    found = await live.client.get(CHECKIN, params={"q": "MUSTER", "session": "forums"})
    assert "Anna Muster" in found.text and "Caritas Heinsberg" in found.text
    assert f'name="person_id" value="{world.anna.id}"' in found.text
    assert "Sam Fremd" not in (await live.client.get(CHECKIN, params={"q": "Fremd"})).text
    form = {
        "csrf_token": re.findall(r'name="csrf_token" value="([^"]*)"', found.text)[1],
        "session": "forums",
        "q": "MUSTER",
        "person_id": str(world.anna.id),
    }
    done = await live.client.post(CHECKIN, data=form)
    assert done.status_code == 200
    assert "Anna Muster ist eingecheckt (11:05)." in done.text
    assert "Eingecheckt um 18.03.2027, 11:05" in done.text  # the search result now says so
    [row] = await rows(session)
    assert (row.method, row.arrived_at) == ("search", berlin(11, 5))
    assert (await live.client.post(CHECKIN, data=form)).status_code == 200
    assert len(await rows(session)) == 1


@pytest.mark.asyncio
async def test_search_page_ignores_case_and_accents(live: Staff, session: AsyncSession) -> None:
    await make_world(session)
    await live.signed_in()
    for query in ("ödland", "ODLAND", "oedland"):
        found = (await live.client.get(CHECKIN, params={"q": query})).text
        assert "Ödland" in found and "Anna Muster" not in found, query
    found = (await live.client.get(CHECKIN, params={"q": "ANNA muster"})).text
    assert "Anna Muster" in found and "Ödland" not in found
    wildcard = (await live.client.get(CHECKIN, params={"q": "%"})).text
    assert "Anna Muster" not in wildcard and "Ödland" not in wildcard


@pytest.mark.asyncio
async def test_check_out_records_when_someone_left(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    await scan(live, token, code_of(live, world.anna))
    live.clock.set(berlin(10, 20))
    form = {"csrf_token": token, "session": "opening", "person_id": str(world.anna.id)}
    early = await live.client.post(CHECKOUT, data={**form, "at": "09:00"})
    assert early.status_code == 422 and "zwischen der Ankunft und jetzt" in early.text
    left = await live.client.post(CHECKOUT, data=form)
    assert left.status_code == 200 and "Anna Muster ging um 10:20." in left.text
    [row] = await rows(session)
    assert row.left_at == berlin(10, 20)
    corrected = await live.client.post(CHECKOUT, data={**form, "at": "09:50"})
    assert "ging um 09:50" in corrected.text
    assert (await rows(session))[0].left_at == berlin(9, 50)
    nobody = {**form, "person_id": str(world.hostile.id)}
    assert (await live.client.post(CHECKOUT, data=nobody)).status_code == 409


@pytest.mark.asyncio
async def test_missing_or_wrong_csrf_token_stores_nothing(
    live: Staff, session: AsyncSession
) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    code = code_of(live, world.anna)
    no_header = await live.client.post(
        CHECKIN, json={"code": code, "session": "opening"}, headers={"Accept": "application/json"}
    )
    assert no_header.status_code == 403 and no_header.json()["code"] == "csrf"
    wrong = await scan(live, token[:-1] + ("A" if token[-1] != "A" else "B"), code)
    assert wrong["status"] == "403"
    form = {"session": "opening", "code": code}
    missing = await live.client.post(CHECKIN, data=form)
    assert missing.status_code == 403 and "Es wurde nichts gespeichert" in missing.text
    bad = await live.client.post(CHECKIN, data={**form, "csrf_token": "x" * len(token)})
    assert bad.status_code == 403
    checkout = {"session": "opening", "person_id": str(world.anna.id)}
    assert (await live.client.post(CHECKOUT, data=checkout)).status_code == 403
    assert await rows(session) == []


@pytest.mark.asyncio
async def test_page_escapes_hostile_names(live: Staff, session: AsyncSession) -> None:
    world = await make_world(session)
    token = await live.signed_in()
    found = await live.client.get(CHECKIN, params={"q": "evil@"})
    page = found.text
    assert HOSTILE not in page and "<img src=x>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Ödland" in page
    await scan(live, token, code_of(live, world.hostile))
    listed = (await live.client.get(CHECKIN)).text
    assert HOSTILE not in listed and "&lt;script&gt;" in listed
    echoed = await live.client.get(CHECKIN, params={"q": '"><b>x'})
    assert '"><b>x' not in echoed.text


@pytest.mark.asyncio
async def test_a_lost_race_against_another_scanner_is_already_checked_in(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(session)
    first = await checkin.check_in(
        session, world.conference, world.anna.id, "opening", "qr", berlin(9, 12)
    )
    await session.commit()
    real_find, calls = checkin._find, list[uuid.UUID]()

    async def blind_once(db: AsyncSession, person_id: uuid.UUID, item_id: int) -> CheckIn | None:
        calls.append(person_id)  # the first look misses the other scanner's row
        return None if len(calls) == 1 else await real_find(db, person_id, item_id)

    monkeypatch.setattr(checkin, "_find", blind_once)
    second = await checkin.check_in(
        session, world.conference, world.anna.id, "opening", "search", berlin(9, 20)
    )
    await session.commit()
    assert (first.already, second.already) == (False, True)
    assert (second.arrived_at, second.method) == (berlin(9, 12), "qr")
    assert len(await rows(session)) == 1


@pytest.mark.asyncio
async def test_a_broken_fetch_body_is_a_clear_refusal(live: Staff, session: AsyncSession) -> None:
    await make_world(session)
    token = await live.signed_in()
    response = await live.client.post(
        CHECKIN,
        content=b"{not json",
        headers={"Content-Type": "application/json", "X-CSRF-Token": token},
    )
    assert response.status_code == 422 and response.json()["outcome"] == "missing_input"
