"""The people area (/admin/{slug}/people) over real HTTP on both backends: the list with
search, filters and paging; add, edit, remove; import with a preview; a person's page and
resending their invitation; who may open it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orchestrator.accounts.models import StaffRole
from orchestrator.conferences import service as conferences
from orchestrator.conferences.models import Conference, SessionKind
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.participants import listing
from orchestrator.participants.assignment import set_override
from orchestrator.participants.models import (
    Assignment,
    AssignmentStatus,
    AttendanceMode,
    ForumChoice,
    Person,
    Role,
    Rsvp,
)
from tests.conftest import SAMPLE_TOML, load_sample
from tests.staff_helpers import add_staff
from tests.test_staff_login import SLUG, Staff
from tests.test_staff_login import live as live

pytestmark = pytest.mark.asyncio
PEOPLE = f"/admin/{SLUG}/people"
INVITED = datetime(2027, 2, 1, tzinfo=UTC)
_ROW_NAME = re.compile(r'<th scope="row"><a href="[^"]+">([^<]+)</a></th>')


def names(html: str) -> list[str]:
    """The names in the list's table, in order."""
    return _ROW_NAME.findall(html)


async def _person(session: AsyncSession, conference: Conference, **fields: Any) -> Person:
    person = Person(conference_id=conference.id, **fields)
    session.add(person)
    await session.flush()
    return person


async def world(session: AsyncSession) -> Conference:
    """Three people who differ in every filter: Müller, Özdemir, Schmidt."""
    conference = await load_sample(session)
    muller = await _person(
        session,
        conference,
        email="j.mueller@example.org",
        first_name="Jürgen",
        last_name="Müller",
        organisation="Caritas Heinsberg",
        rsvp=Rsvp.ACCEPTED,
        attendance_mode=AttendanceMode.IN_PERSON,
        consent=True,
        invited_at=INVITED,
    )
    await set_override(session, conference, muller.id, "sprache", force=True)
    ozdemir = await _person(
        session,
        conference,
        email="a.oezdemir@example.net",
        first_name="Ayşe",
        last_name="Özdemir",
        rsvp=Rsvp.DECLINED,
        attendance_mode=AttendanceMode.ONLINE,
        invited_at=INVITED,
    )
    round_id = next(s.id for s in conference.sessions if s.kind is SessionKind.BREAKOUT_ROUND)
    session.add(
        Assignment(person_id=ozdemir.id, session_id=round_id, status=AssignmentStatus.WAITLISTED)
    )
    session.add(
        OutboxMessage(
            conference_id=conference.id,
            person_id=ozdemir.id,
            kind="invitation",
            dedup_key=f"invitation:{ozdemir.id}",
            recipient=ozdemir.email,
            subject="Einladung",
            message_id="<x@example.org>",
            body=b"",
            state=OutboxState.FAILED,
            last_error="550 mailbox unavailable",
        )
    )
    schmidt = await _person(
        session, conference, email="schmidt@example.org", first_name="Anna", last_name="Schmidt"
    )
    schmidt.role = Role.MODERATOR
    await set_override(session, conference, schmidt.id, "werte", force=True)
    await session.commit()
    return conference


async def test_search_ignores_case_and_accents_and_each_filter_narrows(
    live: Staff, session: AsyncSession
) -> None:
    await world(session)
    await live.signed_in()
    page = await live.client.get(PEOPLE)
    assert page.status_code == 200
    assert 'aria-current="page">Personen</a>' in page.text
    # By last name; where "Ö" goes depends on the database's collation.
    assert sorted(names(page.text)) == ["Anna Schmidt", "Ayşe Özdemir", "Jürgen Müller"]
    assert "3 Personen gefunden" in page.text
    expected = {
        "q=muller": ["Jürgen Müller"],
        "q=MUELLER": ["Jürgen Müller"],
        "q=ozdem": ["Ayşe Özdemir"],
        "q=caritas": ["Jürgen Müller"],
        "q=example.net": ["Ayşe Özdemir"],
        "forum=werte": ["Anna Schmidt"],
        "forum=sprache&q=muller": ["Jürgen Müller"],
        "forum=sprache&q=schmidt": [],
        "waiting=1": ["Ayşe Özdemir"],
        "rsvp=accepted": ["Jürgen Müller"],
        "rsvp=needs_action": ["Anna Schmidt"],
        "invitation=not_invited": ["Anna Schmidt"],
        "invitation=invited": ["Jürgen Müller", "Ayşe Özdemir"],
        "invitation=mail_failed": ["Ayşe Özdemir"],
        "role=moderator": ["Anna Schmidt"],
        "mode=online": ["Ayşe Özdemir"],
        "consent=yes": ["Jürgen Müller"],
        "consent=no": ["Ayşe Özdemir", "Anna Schmidt"],
        "rsvp=nonsense&role=": ["Jürgen Müller", "Ayşe Özdemir", "Anna Schmidt"],
    }
    found = {}
    for query in expected:
        answer = await live.client.get(f"{PEOPLE}?{query}")
        assert answer.status_code == 200, query
        found[query] = sorted(names(answer.text))
    assert found == {query: sorted(people) for query, people in expected.items()}
    empty = await live.client.get(f"{PEOPLE}?q=nobody")
    assert "Niemand gefunden" in empty.text and "0 Personen gefunden" in empty.text


async def test_the_list_pages_fifty_at_a_time_and_keeps_the_filters(
    live: Staff, session: AsyncSession
) -> None:
    conference = await load_sample(session)
    for n in range(120):
        session.add(
            Person(conference_id=conference.id, email=f"p{n:03}@x.org", last_name=f"N{n:03}")
        )
    await session.commit()
    await live.signed_in()
    first = await live.client.get(f"{PEOPLE}?q=x.org")
    assert len(names(first.text)) == 50 and names(first.text)[0] == "N000"
    assert "Seite 1 von 3" in first.text
    assert f'href="{PEOPLE}?q=x.org&amp;page=2"' in first.text
    last = await live.client.get(f"{PEOPLE}?q=x.org&page=3")
    assert names(last.text) == [f"N{n:03}" for n in range(100, 120)]
    beyond = await live.client.get(f"{PEOPLE}?q=x.org&page=99")  # the last page instead
    assert names(beyond.text) == names(last.text)


async def test_a_page_of_the_list_is_two_statements(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    conference = await world(session)
    forum_ids = [forum.id for forum in conference.forums]
    for n in range(80):
        person = Person(conference_id=conference.id, email=f"q{n}@x.org")
        person.choices = [ForumChoice(forum_id=forum_ids[n % len(forum_ids)], rank=1)]
        session.add(person)
    await session.commit()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        found = await listing.search(session, conference.id, listing.Filters(q="x.org"))
        filtered = await listing.search(
            session, conference.id, listing.Filters(forum="sprache", consent=True)
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert (found.total, len(found.rows), found.pages) == (80, 50, 2)
    assert [row.display_name for row in filtered.rows] == ["Jürgen Müller"]
    assert filtered.rows[0].forums == "Sprache – Schlüssel zum Miteinander"
    assert len(statements) == 4, statements  # a count and a page, twice


async def _post(live: Staff, path: str, csrf: str, **data: str) -> Any:
    return await live.client.post(path, data={"csrf_token": csrf, **data})


async def test_add_edit_and_remove_a_person(live: Staff, session: AsyncSession) -> None:
    await world(session)
    csrf = await live.signed_in()
    form = await live.client.get(f"{PEOPLE}/new")
    assert form.status_code == 200 and 'for="f-forum_choice_1"' in form.text
    bad = await _post(
        live, f"{PEOPLE}/new", csrf, email="not-an-address", first_name="Eva\nX",
        forum_choice_1="nosuchforum",
    )  # fmt: skip
    assert bad.status_code == 422
    assert 'aria-describedby="f-email-error"' in bad.text
    assert "Das ist keine gültige E-Mail-Adresse." in bad.text
    assert 'id="f-forum_choice_1-error"' in bad.text and 'id="f-first_name-error"' in bad.text
    assert 'value="not-an-address"' in bad.text  # what was typed comes back
    taken = await _post(live, f"{PEOPLE}/new", csrf, email="J.Mueller@example.org")
    assert taken.status_code == 422 and "bereits auf der Liste" in taken.text
    twice = await _post(
        live, f"{PEOPLE}/new", csrf, email="eva@example.org", forum_choice_1="werte",
        forum_choice_2="werte",
    )  # fmt: skip
    assert twice.status_code == 422 and "nur einmal gewählt" in twice.text
    assert await session.scalar(select(func.count()).select_from(Person)) == 3  # none stored
    added = await _post(
        live, f"{PEOPLE}/new", csrf, email="Eva.Ng@example.org", first_name="Eva",
        last_name="O'Brien-Ng", role="referent", attendance_mode="online", language="en",
        consent="1", forum_choice_1="bildung", forum_choice_2="werte",
    )  # fmt: skip
    assert added.status_code == 303, added.text
    location = added.headers["location"]
    assert location.endswith("?done=added")
    page = await live.client.get(location)
    assert "Die Person wurde hinzugefügt." in page.text and "O&#39;Brien-Ng" in page.text
    person_id = uuid.UUID(location.rsplit("/", 1)[1].split("?")[0])
    edit = await live.client.get(f"{PEOPLE}/{person_id}/edit")
    assert 'value="eva.ng@example.org"' in edit.text
    assert '<option value="bildung" selected>' in edit.text
    saved = await _post(
        live, f"{PEOPLE}/{person_id}/edit", csrf, email="eva.ng@example.org", first_name="Eva",
        last_name="Ng", role="referent", attendance_mode="in_person", language="en",
        forum_choice_1="arbeit",
    )  # fmt: skip
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
    session.expire_all()
    stored = await session.get(Person, person_id)
    assert stored is not None
    assert (stored.last_name, stored.attendance_mode, stored.consent) == (
        "Ng",
        AttendanceMode.IN_PERSON,
        False,
    )
    confirm = await live.client.get(f"{PEOPLE}/{person_id}/remove")
    assert confirm.status_code == 200 and "nicht rückgängig" in confirm.text
    refused = await live.client.post(f"{PEOPLE}/{person_id}/remove", data={"csrf_token": "x"})
    assert refused.status_code == 403
    removed = await _post(live, f"{PEOPLE}/{person_id}/remove", csrf)
    assert removed.status_code == 303 and removed.headers["location"].endswith("?done=removed")
    session.expire_all()
    assert await session.get(Person, person_id) is None
    assert await session.scalar(select(func.count()).select_from(Person)) == 3


CSV = (
    "E-Mail;Vorname;Nachname;Forum Wunsch 1;Forum Wunsch 2;Lieblingsfarbe\r\n"
    "neu1@example.org;Lea;Kaya;sprache;werte;blau\r\n"
    "kaputt;Tom;Ries;sprache;;grün\r\n"
    "neu2@example.org;Ali;Demir;nosuchforum;;rot\r\n"
    "neu3@example.org;Mia;Stern;bildung;;gelb\r\n"
)


async def _upload(live: Staff, csrf: str, text: str = CSV) -> Any:
    files = {"file": ("Einladungsliste.csv", text.encode("cp1252"), "text/csv")}
    return await live.client.post(f"{PEOPLE}/import", data={"csrf_token": csrf}, files=files)


async def test_import_shows_a_preview_and_stores_nothing_until_confirmed(
    live: Staff, session: AsyncSession
) -> None:
    await world(session)
    csrf = await live.signed_in()
    assert (await live.client.get(f"{PEOPLE}/import")).status_code == 200
    uploaded = await _upload(live, csrf)
    assert uploaded.status_code == 303
    preview_url = uploaded.headers["location"]
    kept = list((live.settings.data_dir / "uploads").iterdir())
    assert len(kept) == 2  # the file and its facts, server-side
    preview = await live.client.get(preview_url)
    assert preview.status_code == 200
    text = preview.text
    assert "<td>Forum Wunsch 1</td>\n              <td>Forum 1</td>" in text
    assert "<td>Forum Wunsch 2</td>\n              <td>Forum 2</td>" in text
    assert "„Lieblingsfarbe“ (Spalte F)" in text and "Nicht erkannt" in text
    assert '<tr><td class="number">3</td><td>E-Mail-Adresse ungültig' in text
    assert '<tr><td class="number">4</td><td>Forum 1: unbekanntes Forum' in text
    assert "4 Zeilen, 2 davon können übernommen werden" in text
    count = select(func.count()).select_from(Person)
    assert await session.scalar(count) == 3  # nothing stored by the preview
    rejected = await _post(live, preview_url, csrf)
    assert rejected.status_code == 422 and "Es wurde nichts übernommen" in rejected.text
    assert await session.scalar(count) == 3  # all or nothing
    done = await _post(live, preview_url, csrf, skip_invalid="true")
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=imported&created=2&updated=0&skipped=2")
    listed = await live.client.get(done.headers["location"])
    assert "2 neu, 0 aktualisiert, 2 Zeilen ausgelassen" in listed.text
    assert "Lea Kaya" in names(listed.text) and "Mia Stern" in names(listed.text)
    lea = await session.scalar(select(Person).where(Person.email == "neu1@example.org"))
    assert lea is not None
    keys = await session.scalars(
        select(ForumChoice.rank).where(ForumChoice.person_id == lea.id).order_by(ForumChoice.rank)
    )
    assert list(keys) == [1, 2]
    assert list((live.settings.data_dir / "uploads").iterdir()) == []  # deleted after import
    gone = await live.client.get(preview_url)
    assert gone.status_code == 404 and "nicht mehr vorhanden" in gone.text


async def test_an_unreadable_upload_is_refused_with_its_reason(
    live: Staff, session: AsyncSession
) -> None:
    await world(session)
    csrf = await live.signed_in()
    answer = await _upload(live, csrf, "Vorname;Nachname\r\nLea;Kaya\r\n")
    assert answer.status_code == 422
    assert 'aria-describedby="f-file-error"' in answer.text and "E-Mail-Adresse" in answer.text
    other = await live.client.get(f"{PEOPLE}/import/{'a' * 32}")
    assert other.status_code == 404


async def test_person_page_shows_mail_and_calendar_and_resends(
    live: Staff, session: AsyncSession
) -> None:
    await world(session)
    ozdemir = await session.scalar(select(Person).where(Person.last_name == "Özdemir"))
    schmidt = await session.scalar(select(Person).where(Person.last_name == "Schmidt"))
    assert ozdemir is not None and schmidt is not None
    schmidt_email, schmidt_id = schmidt.email, schmidt.id
    csrf = await live.signed_in()
    page = await live.client.get(f"{PEOPLE}/{ozdemir.id}")
    assert page.status_code == 200
    assert "550 mailbox unavailable" in page.text and "Nicht zugestellt" in page.text
    assert "Auf der Warteliste" in page.text
    mails = select(OutboxMessage).where(OutboxMessage.person_id == schmidt_id)
    assert list(await session.scalars(mails)) == []
    first = await _post(live, f"{PEOPLE}/{schmidt_id}/resend", csrf)
    assert first.headers["location"].endswith("?done=resent")
    session.expire_all()
    [mail] = list(await session.scalars(mails))
    assert (mail.kind, mail.state, mail.recipient) == (
        "invitation",
        OutboxState.QUEUED,
        schmidt_email,
    )
    again = await _post(live, f"{PEOPLE}/{schmidt_id}/resend", csrf)
    assert again.headers["location"].endswith("?done=resent")  # invited now: a new mail
    double = await _post(live, f"{PEOPLE}/{schmidt_id}/resend", csrf)
    assert double.headers["location"].endswith("?done=unchanged")  # a double click
    live.clock.advance(timedelta(minutes=5))
    later = await _post(live, f"{PEOPLE}/{schmidt_id}/resend", csrf)
    assert later.headers["location"].endswith("?done=resent")
    session.expire_all()
    assert len(list(await session.scalars(mails))) == 3
    shown = await live.client.get(f"{PEOPLE}/{schmidt_id}")
    assert shown.text.count("<td>Einladung</td>") == 3
    assert "Im Kalender" in shown.text  # calendar entries as sent, with their version
    assert "Warten auf Versand" in shown.text


async def test_only_this_conferences_organisers_may_open_it(
    live: Staff, session: AsyncSession
) -> None:
    await world(session)
    sample = conferences.parse_spec_file(SAMPLE_TOML)
    other = sample.model_copy(
        update={"conference": sample.conference.model_copy(update={"slug": "other-2027"})}
    )
    await conferences.import_spec(session, other)
    await session.commit()
    await add_staff(session, "andere@example.org", conference="other-2027")
    await add_staff(session, "einlass@example.org", StaffRole.CHECKIN, conference=SLUG)
    person = await session.scalar(select(Person.id).where(Person.last_name == "Schmidt"))
    paths = [PEOPLE, f"{PEOPLE}/new", f"{PEOPLE}/import", f"{PEOPLE}/{person}"]
    for email in ("andere@example.org", "einlass@example.org"):
        csrf = await live.signed_in(email)
        for path in paths:
            assert (await live.client.get(path)).status_code == 403, (email, path)
        refused = await _post(live, f"{PEOPLE}/{person}/remove", csrf)
        assert refused.status_code == 403, email
    assert (await live.client.get("/admin/other-2027/people")).status_code == 403  # checkin
    csrf = await live.signed_in("andere@example.org")
    assert (await live.client.get("/admin/other-2027/people")).status_code == 200
    assert await session.scalar(select(func.count()).select_from(Person)) == 3
    live.client.cookies.clear()
    anonymous = await live.client.get(PEOPLE)
    assert anonymous.status_code == 303 and "/admin/login" in anonymous.headers["location"]
