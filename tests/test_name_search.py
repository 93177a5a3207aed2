"""Name search at the check-in desk: case- and accent-insensitive in every script, both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance import checkin
from orchestrator.attendance.retention import apply_retention, retention_ends
from orchestrator.conferences.models import Conference
from orchestrator.participants import repository
from orchestrator.participants.models import Person
from orchestrator.participants.search_keys import fold, search_key
from tests.conftest import load_sample

PEOPLE = [  # email, first name, last name, organisation
    ("ayse@example.org", "Ayşe", "Özdemir", "Integrationsrat"),
    ("oemer@example.org", "Ömer", "Yılmaz", ""),
    ("hans@example.org", "Hans", "Müller", ""),
    ("petra@example.org", "Petra", "Mueller", ""),
    ("weiss@example.org", "Greta", "Weiß", "Bürgerhaus Hauptstraße"),
    ("zeynep@example.org", "Zeynep", "Şengül", ""),
    ("ismail@example.org", "İsmail", "Kaya", ""),
    ("siobhan@example.org", "Siobhán", "O'Connor", ""),
    ("k_meyer@example.org", "Klaus-Peter", "Meyer-Lüdenscheid", "Caritas/Diakonie"),
    ("mohammed@example.org", "محمد", "العلي", ""),
    ("natalia@example.org", "Наталья", "Ёлкина", "100% Inklusion"),
]


async def world(session: AsyncSession) -> Conference:
    conference = await load_sample(session)
    other = Conference(slug="andere-2027", title="Eine andere Konferenz")
    session.add(other)
    await session.flush()
    session.add_all(
        Person(conference_id=conference.id, email=e, first_name=f, last_name=n, organisation=o)
        for e, f, n, o in PEOPLE
    )
    session.add(Person(conference_id=other.id, email="x@example.net", last_name="Özdemir"))
    await session.commit()
    return conference


async def names(session: AsyncSession, conference: Conference, query: str) -> list[str]:
    return [p.last_name for p in await checkin.search(session, conference, query)]


CASES = {
    "özdemir": ["Özdemir"],
    "OZDEMIR": ["Özdemir"],
    "oezdemir": ["Özdemir"],
    "ayse öz": ["Özdemir"],
    "ömer": ["Yılmaz"],
    "Omer": ["Yılmaz"],
    "YILMAZ": ["Yılmaz"],
    "muller": ["Müller"],
    "mueller": ["Mueller", "Müller"],
    "MÜLLER": ["Mueller", "Müller"],
    "strasse": ["Weiß"],
    "HAUPTSTRASSE": ["Weiß"],
    "straße": ["Weiß"],
    "weiss": ["Weiß"],
    "sengul": ["Şengül"],
    "ŞENGÜL": ["Şengül"],
    "Ismail": ["Kaya"],
    "İSMAİL": ["Kaya"],
    "siobhan": ["O'Connor"],
    "o'connor": ["O'Connor"],
    "O’Connor": ["O'Connor"],  # the phone keyboard's apostrophe
    "oconnor": ["O'Connor"],
    "klaus-peter": ["Meyer-Lüdenscheid"],
    "meyer-lud": ["Meyer-Lüdenscheid"],
    "Meyer–Lüdenscheid": ["Meyer-Lüdenscheid"],  # an en dash
    "محمد": ["العلي"],
    "مُحَمَّد": ["العلي"],  # with vowel marks
    "наталья": ["Ёлкина"],
    "ЁЛКИНА": ["Ёлкина"],
    "елкина": ["Ёлкина"],
    "caritas/d": ["Meyer-Lüdenscheid"],
    "@EXAMPLE.NET": [],  # the other conference's
}


@pytest.mark.asyncio
@pytest.mark.parametrize("query", list(CASES))
async def test_search_ignores_case_and_accents(session: AsyncSession, query: str) -> None:
    conference = await world(session)
    assert await names(session, conference, query) == CASES[query]


@pytest.mark.asyncio
async def test_like_wildcards_typed_are_literal(session: AsyncSession) -> None:
    conference = await world(session)
    assert await names(session, conference, "%") == ["Ёлкина"]
    assert await names(session, conference, "0% ink") == ["Ёлкина"]
    assert await names(session, conference, "1_0") == []
    assert await names(session, conference, "_") == ["Meyer-Lüdenscheid"]
    assert await names(session, conference, "k_m") == ["Meyer-Lüdenscheid"]
    assert await names(session, conference, "a%a") == []
    assert await names(session, conference, "s/%") == []
    assert await names(session, conference, "\\") == []
    assert await names(session, conference, "   ") == []
    assert await names(session, conference, "'") == []


@pytest.mark.asyncio
async def test_order_limit_and_total_are_kept(session: AsyncSession) -> None:
    conference = await world(session)
    found = await checkin.search(session, conference, "example.org", limit=3)
    assert [p.last_name for p in found] == ["Kaya", "Meyer-Lüdenscheid", "Mueller"]
    people, total = await repository.page(
        session, conference.id, query="MUELLER", offset=1, limit=1
    )
    assert total == 2 and [p.last_name for p in people] == ["Müller"]


@pytest.mark.asyncio
async def test_key_follows_renames_and_anonymisation(session: AsyncSession) -> None:
    conference = await world(session)
    [hans] = await checkin.search(session, conference, "hans muller")
    hans.first_name, hans.last_name = "Hannes", "Groß"
    await session.commit()
    assert await names(session, conference, "hans muller") == []
    assert await names(session, conference, "hannes gross") == ["Groß"]
    hans.organisation = "Kreis Heinsberg"  # another field only: the name stays findable
    await session.commit()
    assert await names(session, conference, "GROSS") == ["Groß"]

    ends = retention_ends(conference)
    assert ends is not None
    report = await apply_retention(session, ends + timedelta(minutes=1))
    await session.commit()
    assert report.people == len(PEOPLE)
    keys = (await session.execute(select(Person.search_key))).scalars().all()
    assert not any("ozdemir" in key or "gross" in key for key in keys if "example.invalid" in key)
    assert await names(session, conference, "özdemir") == []
    assert await names(session, conference, "Groß") == []
    assert len(await checkin.search(session, conference, "gelöscht", limit=50)) == len(PEOPLE)


@pytest.mark.asyncio
async def test_bulk_writes_are_keyed_or_refused(session: AsyncSession) -> None:
    conference = await world(session)
    await session.execute(
        insert(Person),
        [{"conference_id": conference.id, "email": "bulk@example.org", "last_name": "Ünal"}],
    )
    assert await names(session, conference, "unal") == ["Ünal"]
    with pytest.raises(ValueError, match="names"):
        await session.execute(
            update(Person).where(Person.conference_id == conference.id).values(last_name="x")
        )


def test_fold() -> None:
    assert fold("Müller") == ("muller", "mueller")
    assert fold("Straße") == ("strasse",)
    assert fold("İsmail Yılmaz") == ("ismail yilmaz",)
    assert fold("  O’Connor \t Ø ") == ("oconnor o",)
    assert search_key("Ayşe", "Özdemir", "a@example.org", "") == (
        "ayse ozdemir\nayse oezdemir\na@example.org"
    )
