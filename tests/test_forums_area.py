"""The organiser's forums (/admin/{slug}/forums) over real HTTP, SQLite and PostgreSQL.

Fill and seat origins, waiting-list positions, the balancer's preview (nothing stored) and
its run (exactly the preview), promoting a waiting person (calendar REQUEST and the seat
notice, delivered by SMTP), the waiting-list mail (once), the personal page, and who may.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts.models import StaffRole
from orchestrator.clock import FrozenClock
from orchestrator.conferences import service as conferences
from orchestrator.conferences.models import Conference
from orchestrator.followups import MailContext, after_change
from orchestrator.invitations.runs import invite_everyone
from orchestrator.invitations.service import queue_invitations
from orchestrator.mail.models import OutboxMessage
from orchestrator.mail.rendering import NOTICE_KINDS, render
from orchestrator.mail.sender import OutboxSender, SenderOptions
from orchestrator.mail.smtp import SmtpTransport
from orchestrator.participants.assignment import run_assignment
from orchestrator.participants.balancing import Candidate, lottery_key
from orchestrator.participants.forum_board import board
from orchestrator.participants.models import Assignment, Person
from orchestrator.rebalancing import preview
from tests.assignment_helpers import add_people, guest, sample, set_capacity, snapshot
from tests.conftest import SAMPLE_TOML
from tests.smtp_server import FROM, Sessions, SmtpServer
from tests.smtp_server import smtp_server_fixture as smtp_server_fixture
from tests.staff_helpers import add_staff
from tests.test_staff_login import SLUG, Staff
from tests.test_staff_login import live as live

PAGE = f"/admin/{SLUG}/forums"
MAIL = MailContext(base_url="http://orchestrator.test", sender=FROM)
NOW = datetime(2027, 3, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))
DIGEST = re.compile(r'name="digest" value="([0-9a-f]+)"')


async def _world(session: AsyncSession) -> Conference:
    """sprache 2 seats, werte 1, the other forums none: a, b, c want sprache (then werte),
    d wants werte, f sprache only, e chose nothing."""
    conference = await sample(session)
    for key, seats in {"sprache": 2, "werte": 1, "bildung": 0, "arbeit": 0}.items():
        await set_capacity(session, conference, key, seats)
    await set_capacity(session, conference, "bleibeperspektive", 0)
    await add_people(
        session,
        conference,
        [
            guest("a@example.org", "sprache", "werte"),
            guest("b@example.org", "sprache", "werte"),
            guest("c@example.org", "sprache", "werte"),
            guest("d@example.org", "werte"),
            guest("f@example.org", "sprache"),
            guest("e@example.org"),
        ],
    )
    return conference


async def _invite(session: AsyncSession, conference: Conference, now: datetime) -> None:
    await queue_invitations(
        session,
        conference,
        base_url=MAIL.base_url,
        message_domain="kreis.example",
        sender=FROM,
        now=now,
    )
    await session.commit()


async def _outbox(session: AsyncSession, kind: str | None = None) -> list[OutboxMessage]:
    statement = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    return list(await session.scalars(statement.execution_options(populate_existing=True)))


async def _person(session: AsyncSession, email: str) -> Person:
    found = await session.scalar(select(Person).where(Person.email == email))
    assert found is not None
    return found


@pytest.mark.asyncio
async def test_fill_origins_and_waiting_positions(live: Staff, session: AsyncSession) -> None:
    conference = await _world(session)
    await run_assignment(session, conference, overflow="waitlist")
    await session.commit()
    [forums] = await board(session, conference)
    lines = {line.key: line for line in forums.forums}
    assert (lines["sprache"].seated, lines["sprache"].first, lines["sprache"].free) == (2, 2, 0)
    assert (lines["werte"].seated, lines["werte"].first) == (1, 1)
    assert forums.no_choice == 1  # e
    waiting = [person.email for person in forums.waiting]
    assert len(waiting) == 2 and "f@example.org" in waiting
    draw = sorted(forums.waiting, key=lambda w: lottery_key(SLUG, Candidate(w.person_id, w.email)))
    assert waiting == [w.email for w in draw]  # put there together: by the balancer's draw
    [row] = [w for w in forums.waiting if w.email == "f@example.org"]
    assert row.choices == ("Sprache – Schlüssel zum Miteinander",)
    last = waiting[-1]  # who waits longest comes first
    earlier = forums.waiting[0].since - timedelta(hours=1)
    person = await _person(session, last)
    await session.execute(
        update(Assignment).where(Assignment.person_id == person.id).values(updated_at=earlier)
    )
    await session.commit()
    [forums] = await board(session, conference)
    assert [w.email for w in forums.waiting] == [last, waiting[0]]
    assert [w.position for w in forums.waiting] == [1, 2]

    await live.signed_in()
    page = await live.client.get(PAGE)
    assert page.status_code == 200, page.text
    assert '<progress aria-labelledby="fill-1-sprache-label" max="2" value="2">' in page.text
    assert "2 von 2 Plätzen belegt, 0 Plätze frei" in page.text
    assert "1 von 1 Plätzen belegt" in page.text
    assert page.text.index(last) < page.text.index(waiting[0])  # position 1 first
    assert 'aria-current="page">Foren</a>' in page.text
    english = await live.client.get(PAGE + "?lang=en")
    assert "2 of 2 seats taken, 0 seats free" in english.text and "Waiting list" in english.text


@pytest.mark.asyncio
async def test_preview_stores_nothing_and_the_run_does_what_it_showed(
    live: Staff, session: AsyncSession
) -> None:
    conference = await _world(session)
    await _invite(session, conference, live.clock())
    titles = {forum.id: forum.title for forum in conference.forums}
    before, mails_before = await snapshot(session), len(await _outbox(session))
    csrf = await live.signed_in()
    shown = await live.client.get(f"{PAGE}/balance?overflow=waitlist")
    assert shown.status_code == 200, shown.text
    assert await snapshot(session) == before and len(await _outbox(session)) == mails_before
    assert "Noch wurde nichts geändert." in shown.text
    expected = await preview(session, conference, MAIL, live.clock(), overflow="waitlist")
    await session.rollback()
    assert await snapshot(session) == before and len(await _outbox(session)) == mails_before
    assert {change.kind for change in expected.changes} == {"seated", "waitlisted"}
    assert expected.count("seated") == 3 and expected.count("waitlisted") == 2
    assert expected.mails == {"update": 3, "waitlisted": 2}
    [digest] = DIGEST.findall(shown.text)
    assert digest == expected.digest

    stale = await live.client.post(
        f"{PAGE}/balance", data={"csrf_token": csrf, "overflow": "waitlist", "digest": "0" * 32}
    )
    assert stale.headers["location"].endswith("/balance?overflow=waitlist&status=stale")
    assert await snapshot(session) == before
    done = await live.client.post(
        f"{PAGE}/balance", data={"csrf_token": csrf, "overflow": "waitlist", "digest": digest}
    )
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?status=balanced&mails=5"
    rows = {row.person_id: row for row in await session.scalars(select(Assignment))}
    assert set(rows) == {change.person_id for change in expected.changes}
    for change in expected.changes:
        row = rows[change.person_id]
        assert titles.get(row.forum_id or 0, "") == change.now
    kinds = [row.kind for row in await _outbox(session)][mails_before:]
    assert sorted(kinds) == sorted(["update"] * 3 + ["waitlisted"] * 2)
    flash = await live.client.get(done.headers["location"])
    assert "Die Foren sind zugeteilt." in flash.text and "5 E-Mails" in flash.text


@pytest.mark.asyncio
async def test_the_waitlisted_mail_goes_once_and_only_to_people_invited(
    session: AsyncSession, live: Staff
) -> None:
    conference = await _world(session)
    await run_assignment(session, conference, overflow="waitlist")
    await after_change(session, conference, MAIL, live.clock())
    await session.commit()
    assert await _outbox(session, "waitlisted") == []  # nobody invited yet
    await _invite(session, conference, live.clock())
    await after_change(session, conference, MAIL, live.clock())
    await session.commit()
    first = await _outbox(session, "waitlisted")
    assert len(first) == 2
    for _ in range(2):  # a rerun, another follow-up: nothing new
        await run_assignment(session, conference, overflow="waitlist")
        await after_change(session, conference, MAIL, live.clock())
        await session.commit()
    assert [row.id for row in await _outbox(session, "waitlisted")] == [row.id for row in first]
    assert await _outbox(session, "seat_offered") == []
    await set_capacity(session, conference, "sprache", 3)  # a seat more: a rerun gives it away
    for _ in range(2):
        await run_assignment(session, conference, overflow="waitlist")
        await after_change(session, conference, MAIL, live.clock())
        await session.commit()
    [offered] = await _outbox(session, "seat_offered")
    [still] = [row for row in first if row.person_id != offered.person_id]
    assert offered.person_id in {row.person_id for row in first}
    rows = {row.person_id: row.forum_id for row in await session.scalars(select(Assignment))}
    assert offered.person_id is not None and still.person_id is not None
    assert rows[offered.person_id] is not None and rows[still.person_id] is None
    updates = await _outbox(session, "update")
    assert offered.person_id in {row.person_id for row in updates}
    mail = BytesParser(policy=policy.default).parsebytes(first[0].body)
    assert mail["Subject"].startswith("Sie stehen auf der Warteliste: ")
    assert "zurzeit an Platz" in _text(mail)


def _text(message: EmailMessage) -> str:
    return "".join(
        str(part.get_content())
        for part in message.walk()
        if part.get_content_type() in ("text/plain", "text/calendar")
    )


@pytest.mark.asyncio
async def test_promoting_a_waiting_person_sends_the_calendar_and_the_seat_notice(
    live: Staff, session: AsyncSession, sessions: Sessions, smtp_server: SmtpServer
) -> None:
    conference = await _world(session)
    await _invite(session, conference, live.clock())
    await run_assignment(session, conference, overflow="waitlist")
    await after_change(session, conference, MAIL, live.clock())
    await session.commit()
    f = await _person(session, "f@example.org")
    await set_capacity(session, conference, "bildung", 1)
    csrf = await live.signed_in()
    page = await live.client.get(PAGE)
    assert f'name="person" value="{f.id}"' in page.text
    placed = await live.client.post(
        f"{PAGE}/place", data={"csrf_token": csrf, "person": str(f.id), "forum": "bildung"}
    )
    assert placed.headers["location"] == f"{PAGE}?status=placed&mails=2"
    full = await live.client.post(
        f"{PAGE}/place", data={"csrf_token": csrf, "person": "a@example.org", "forum": "werte"}
    )
    assert full.headers["location"] == f"{PAGE}?status=forum_full"
    nobody = await live.client.post(
        f"{PAGE}/place", data={"csrf_token": csrf, "person": "x@example.org", "forum": "werte"}
    )
    assert nobody.headers["location"] == f"{PAGE}?status=person_unknown"
    shown = await live.client.get(nobody.headers["location"])
    assert 'aria-describedby="f-person-error"' in shown.text

    transport = SmtpTransport(smtp_server.settings(live.settings))
    options = SenderOptions(concurrency=2, batch_size=50, poll_interval=0.02)
    sender = OutboxSender(sessions, transport, FROM, options=options, clock=live.clock)
    while await sender.run_once():
        pass
    await transport.close()
    to_f = [
        BytesParser(policy=policy.default).parsebytes(message.data)
        for message in smtp_server.handler.messages
        if message.rcpt_tos == ("f@example.org",)
    ]
    subjects = sorted(str(message["Subject"]).split(":")[0] for message in to_f)
    assert subjects == [
        "Einladung",
        "Geänderte Termine",
        "Ihr Platz im Forum",
        "Sie stehen auf der Warteliste",
    ], subjects
    [update_mail] = [m for m in to_f if str(m["Subject"]).startswith("Geänderte")]
    calendar = _text(update_mail)
    assert "METHOD:REQUEST" in calendar and "Ausbildung" in calendar
    [notice] = [m for m in to_f if str(m["Subject"]).startswith("Ihr Platz")]
    assert "Sie nehmen am Forum „(Aus-)Bildung" in _text(notice)
    assert notice.get_content_type() == "multipart/alternative"  # no second calendar


@pytest.mark.asyncio
async def test_the_personal_page_shows_the_position_and_no_change_button(
    live: Staff, session: AsyncSession
) -> None:
    conference = await _world(session)
    await run_assignment(session, conference, overflow="waitlist")
    await session.commit()
    [forums] = await board(session, conference)
    second = await _person(session, forums.waiting[1].email)
    page = await live.client.get(f"/p/{second.token}")
    assert "Sie stehen für diese Runde auf der Warteliste." in page.text
    assert "Ihr Platz auf der Warteliste: 2" in page.text
    assert f'action="/p/{second.token}/forum"' not in page.text
    assert "Alle Foren dieser Runde sind zurzeit voll." in page.text
    await set_capacity(session, conference, "bildung", 1)  # a seat is free: the form is back
    page = await live.client.get(f"/p/{second.token}")
    assert f'action="/p/{second.token}/forum"' in page.text


@pytest.mark.asyncio
async def test_only_this_conferences_organisers_may(live: Staff, session: AsyncSession) -> None:
    conference = await _world(session)
    spec = conferences.parse_spec_file(SAMPLE_TOML)
    other = spec.model_copy(
        update={"conference": spec.conference.model_copy(update={"slug": "other-2027"})}
    )
    await conferences.import_spec(session, other)
    await session.commit()
    await add_staff(session, "andere@example.org", conference="other-2027")
    await add_staff(session, "einlass@example.org", StaffRole.CHECKIN, conference=SLUG)
    before = await snapshot(session)
    a = await _person(session, "a@example.org")
    for email in ("andere@example.org", "einlass@example.org"):
        csrf = await live.signed_in(email)
        for url in (PAGE, f"{PAGE}/balance"):
            assert (await live.client.get(url)).status_code == 403, (email, url)
        for url, data in (
            (f"{PAGE}/balance", {"overflow": "waitlist", "digest": "x"}),
            (f"{PAGE}/place", {"person": str(a.id), "forum": "sprache"}),
        ):
            response = await live.client.post(url, data={"csrf_token": csrf, **data})
            assert response.status_code == 403, (email, url)
    assert await snapshot(session) == before
    assert conference.slug == SLUG
    csrf = await live.signed_in()
    refused = await live.client.post(
        f"{PAGE}/place", data={"csrf_token": "wrong", "person": str(a.id), "forum": "sprache"}
    )
    assert refused.status_code == 403 and await snapshot(session) == before
    assert (await session.scalar(select(func.count()).select_from(OutboxMessage))) == 0


def _notice_context(hostile: str) -> dict[str, object]:
    start = datetime(2027, 3, 18, 11, tzinfo=ZoneInfo("Europe/Berlin"))
    conference = {"title": "Integrationskonferenz", "lead_theme": "Arbeit",
                  "organiser": "KI Heinsberg", "organiser_email": "ki@example.org"}  # fmt: skip
    return {"name": hostile, "conference": conference, "timezone": "Europe/Berlin",
            "personal_url": "http://orchestrator.test/p/tok", "agenda": [], "cancelled": [],
            "round": {"title": "Foren", "id": 1}, "round_start": start, "position": 3,
            "choices": ["Sprache", hostile], "forum": "Sprache <b>", "room": "Raum 2"}  # fmt: skip


@pytest.mark.parametrize("kind", NOTICE_KINDS)
@pytest.mark.parametrize("language", ["de", "en"])
def test_the_notices_render_in_each_language(kind: str, language: str) -> None:
    hostile = 'Ömer "O\'Connor" <script>'
    rendered = render(kind, language, _notice_context(hostile))
    assert rendered.subject.endswith(": Integrationskonferenz") and "\n" not in rendered.subject
    words = {
        "de": ("Guten Tag", "Datenschutz", "11:00", "Donnerstag, 18. März 2027"),
        "en": ("Hello", "Privacy", "11:00", "Thursday, 18 March 2027"),
    }
    for body in (rendered.text, rendered.html):
        assert all(word in body for word in words[language]), body
        assert "http://orchestrator.test/p/tok" in body
        other = words["en" if language == "de" else "de"]
        assert not any(word in body for word in other[:2])
    if kind == "waitlisted":
        assert {"de": "Platz 3", "en": "position 3"}[language] in rendered.text
        assert hostile in rendered.text and "Sprache" in rendered.text
    else:
        assert "Sprache <b>" in rendered.text and "Sprache &lt;b&gt;" in rendered.html
        assert {"de": "Warteliste", "en": "waiting list"}[language] in rendered.text
    assert f'<html lang="{language}">' in rendered.html
    assert "&lt;script&gt;" in rendered.html and "<script>" not in rendered.html


@pytest.mark.asyncio
async def test_inviting_tells_those_already_waiting(
    session: AsyncSession, sessions: Sessions
) -> None:
    conference = await _world(session)
    await run_assignment(session, conference, overflow="waitlist")
    await after_change(session, conference, MAIL, NOW)
    await session.commit()
    assert await _outbox(session, "waitlisted") == []
    invited, changes = await invite_everyone(
        sessions,
        SLUG,
        base_url=MAIL.base_url,
        message_domain="kreis.example",
        sender=FROM,
        clock=FrozenClock(NOW),
    )
    assert invited.queued == 6 and changes.queued == 2
    assert len(await _outbox(session, "waitlisted")) == 2
