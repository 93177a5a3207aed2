"""Invitations and mail in the workspace (/admin/{slug}/mail) over real HTTP, on SQLite and
PostgreSQL: invitation runs in the background followed over server-sent events, failed mail
with its reason and a retry that the real SMTP server then receives, previews of every mail
(the HTML only in a sandboxed frame), the outbox, and who may see all that.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import FrozenClock
from orchestrator.conferences import repository
from orchestrator.conferences.models import Forum
from orchestrator.config import Settings
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.mail.sender import OutboxSender, SenderOptions
from orchestrator.mail.smtp import SmtpTransport
from orchestrator.web import staff
from orchestrator.web.app import create_app
from tests.invitation_helpers import add_person, conference_with_people
from tests.live import serve
from tests.smtp_server import FROM, SmtpServer, smtp_server_fixture
from tests.staff_helpers import add_staff
from tests.test_admin_mail import deliver, hostile, invitation
from tests.test_staff_login import SLUG, Staff, berlin, csrf_of, live
from tests.test_staff_roles import CHECKIN, EVERYTHING, OTHER, OTHER_ORGANISER, Site, site

__all__ = ["live", "site", "smtp_server_fixture"]

AREA = f"/admin/{SLUG}/mail"
PEOPLE = ["anna@example.org", "ben@example.org", "carla@example.org", "dora@example.org"]
HOSTILE = '<script>alert("x")</script> & Co'
Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Area:
    client: httpx.AsyncClient
    csrf: str
    clock: FrozenClock
    smtp: SmtpServer
    sessions: Sessions
    settings: Settings

    @asynccontextmanager
    async def sender(self) -> AsyncIterator[OutboxSender]:
        """The outbox sender, delivering to the real SMTP server while the block runs."""
        transport = SmtpTransport(self.settings, connections=2)
        options = SenderOptions(concurrency=2, batch_size=20, poll_interval=0.05)
        sender = OutboxSender(self.sessions, transport, FROM, options=options, clock=self.clock)
        task = asyncio.create_task(sender.run())
        try:
            yield sender
        finally:
            sender.stop()
            await task
            await transport.close()

    async def events(self, until: str = "done") -> list[tuple[str, dict[str, Any]]]:
        """Read the progress stream until an event named `until` (or the stream ends)."""
        found: list[tuple[str, dict[str, Any]]] = []
        async with self.client.stream("GET", f"{AREA}/progress") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            name = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    found.append((name, json.loads(line.removeprefix("data: "))))
                    if name == until:
                        break
        return found

    async def settled(self) -> dict[str, Any]:
        """Wait (over the stream) until no run is going; its last figures."""
        async with self.client.stream("GET", f"{AREA}/progress") as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                    if not data["running"]:
                        return data
        raise AssertionError("the stream ended while the run was going")

    async def send(self, whom: str = "all") -> httpx.Response:
        return await self.client.post(f"{AREA}/send", data={"csrf_token": self.csrf, "whom": whom})


@pytest_asyncio.fixture
async def area(
    settings: Settings, session: AsyncSession, sessions: Sessions, smtp_server: SmtpServer
) -> AsyncIterator[Area]:
    """The sample conference with four people (seated, none invited), an organiser signed in."""
    await conference_with_people(session)
    await add_staff(session)
    settings = smtp_server.settings(settings)
    clock = FrozenClock(berlin(9, 12, day=1))
    async with (
        serve(create_app(settings, clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        form = await client.get("/admin/login")
        data = {"email": "orga@example.org", "password": "correct horse battery staple"}
        login = await client.post("/admin/login", data=data | {"csrf_token": csrf_of(form.text)})
        assert login.status_code == 303
        page = await client.get(AREA)
        assert page.status_code == 200, page.text
        yield Area(client, csrf_of(page.text), clock, smtp_server, sessions, settings)


async def _outbox(session: AsyncSession) -> list[OutboxMessage]:
    session.expire_all()
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.recipient))
    return list(rows)


async def _forum_id(session: AsyncSession, key: str) -> int:
    return (await session.scalars(select(Forum.id).where(Forum.key == key))).one()


@pytest.mark.asyncio
async def test_sending_queues_exactly_those_not_yet_invited(
    area: Area, session: AsyncSession
) -> None:
    sprache = await _forum_id(session, "sprache")
    page = await area.client.get(AREA)
    assert "4 Personen wurden noch nicht eingeladen." in page.text
    assert '<option value="all" selected>Alle, die noch nicht eingeladen wurden (4)' in page.text
    option = re.search(
        rf'<option value="{sprache}">Noch nicht Eingeladene im Forum „[^“]+“ \((\d)\)', page.text
    )
    assert option and option.group(1) == "1", page.text
    response = await area.send(str(sprache))  # the forum "sprache": anna only
    assert response.status_code == 303
    assert response.headers["location"] == f"{AREA}?status=started#send"
    await area.settled()
    assert [row.recipient for row in await _outbox(session)] == ["anna@example.org"]

    assert (await area.send("all")).status_code == 303
    figures = await area.settled()
    rows = await _outbox(session)
    assert sorted(row.recipient for row in rows) == PEOPLE  # each once: anna not again
    assert {row.kind for row in rows} == {"invitation"}
    assert figures["waiting"] == 4 and figures["total"] == 4
    page = await area.client.get(AREA)
    assert "Alle Eingeladenen haben bereits eine Einladung erhalten" not in page.text
    again = await area.send("all")
    assert again.headers["location"] == f"{AREA}?status=nobody#send"
    assert len(await _outbox(session)) == 4
    bad = await area.send("999999")
    assert bad.headers["location"] == f"{AREA}?status=whom#send"
    shown = await area.client.get(bad.headers["location"])
    assert "Bitte wählen Sie, wen Sie einladen möchten." in shown.text


@pytest.mark.asyncio
async def test_the_stream_emits_counts_until_done_and_the_page_shows_them(
    area: Area, session: AsyncSession
) -> None:
    assert (await area.send()).status_code == 303
    async with area.sender():
        events = await area.events()
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"progress"}
    sent = [data["sent"] for _, data in events]
    assert sent == sorted(sent)  # never backwards
    last = events[-1][1]
    assert last == {
        "waiting": 0,
        "sent": 4,
        "failed": 0,
        "total": 4,
        "running": False,
        "done": 4,
        "finished": True,
    }
    assert area.smtp.handler.count == 4
    page = await area.client.get(AREA)  # without JavaScript: the figures and a reload link
    html = page.text
    assert '<span class="figure-number" data-count="sent">4</span>' in html
    assert '<span class="figure-number" data-count="waiting">0</span>' in html
    assert '<progress aria-labelledby="invite-bar-label" max="4" value="4">' in html
    assert f'<a href="{AREA}#progress-title">Neu laden' in html
    assert f'data-stream="{AREA}/progress"' in html
    assert '<script src="/static/mail-area.js" defer></script>' in html
    assert (await area.client.get("/static/mail-area.js")).status_code == 200


@pytest.mark.asyncio
async def test_failed_mail_is_listed_with_its_reason_and_a_retry_delivers_it(
    area: Area, session: AsyncSession
) -> None:
    area.smtp.handler.refuse["dora@example.org"] = "550 5.1.1 User unknown"
    await area.send()
    async with area.sender():
        last = (await area.events())[-1][1]
    assert (last["sent"], last["failed"]) == (3, 1)
    page = await area.client.get(AREA)
    failed = page.text.split('id="failed"', 1)[1].split("</section>", 1)[0]
    assert "<td>dora@example.org</td>" in failed
    assert "550 5.1.1 User unknown" in failed
    assert "<td>anna@example.org</td>" not in failed
    listing = await area.client.get(f"{AREA}/outbox?state=failed")
    assert "dora@example.org" in listing.text and "anna@example.org" not in listing.text

    del area.smtp.handler.refuse["dora@example.org"]
    [dora] = [row for row in await _outbox(session) if row.recipient == "dora@example.org"]
    retry = await area.client.post(
        f"{AREA}/retry", data={"csrf_token": area.csrf, "message": str(dora.id)}
    )
    assert retry.status_code == 303
    assert retry.headers["location"] == f"{AREA}?status=requeued&count=1#failed"
    [row] = [row for row in await _outbox(session) if row.recipient == "dora@example.org"]
    assert (row.state, row.attempts) == (OutboxState.QUEUED, 0)
    async with area.sender():
        last = (await area.events())[-1][1]
    assert (last["sent"], last["failed"]) == (4, 0)
    assert sum("dora@example.org" in m.rcpt_tos for m in area.smtp.handler.messages) == 1
    again = await area.client.post(f"{AREA}/retry", data={"csrf_token": area.csrf})
    assert again.headers["location"] == f"{AREA}?status=none_failed#failed"
    refused = await area.client.post(f"{AREA}/retry", data={"csrf_token": "forged"})
    assert refused.status_code == 403


def _text_part(html: str) -> str:
    return html.split('<pre class="mail-text">', 1)[1].split("</pre>", 1)[0]


def _frame_src(html: str) -> str:
    found = re.search(r'<iframe class="mail-frame" sandbox src="([^"]+)"', html)
    assert found, html
    return found.group(1).replace("&amp;", "&")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("language", "subject_word", "text_word"),
    [("de", "Einladung", "Guten Tag"), ("en", "Invitation", "Hello")],
)
async def test_preview_shows_text_and_html_of_a_mail_in_each_language(
    area: Area, session: AsyncSession, language: str, subject_word: str, text_word: str
) -> None:
    page = await area.client.get(f"{AREA}/preview?kind=invitation&language={language}")
    assert page.status_code == 200
    policy = staff.ADMIN_HEADERS["Content-Security-Policy"]
    assert page.headers["content-security-policy"] == f"{policy}; frame-src 'self'"
    assert subject_word in page.text
    text = _text_part(page.text)
    assert text_word in text and "Erika Mustermann" in text
    frame = await area.client.get(_frame_src(page.text))
    assert frame.status_code == 200
    assert f'<html lang="{language}">' in frame.text and "Erika Mustermann" in frame.text
    assert "/p/beispiel-persoenlicher-link" in frame.text
    csp = frame.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "sandbox" in csp
    assert "frame-ancestors 'self'" in csp
    assert frame.headers["cache-control"] == "no-store"
    # A real person, and a reminder: the same templates and agenda as the real mails.
    anna = await area.client.get(
        f"{AREA}/preview?kind=reminder&language={language}&email=ANNA@example.org"
    )
    assert "Anna Beispiel" in _text_part(anna.text)
    for kind in ("update", "cancellation", "rsvp_needed", "choose_forum", "thank_you"):
        shown = await area.client.get(f"{AREA}/preview?kind={kind}&language={language}")
        assert shown.status_code == 200 and '<pre class="mail-text">' in shown.text, kind


@pytest.mark.asyncio
async def test_preview_never_lets_user_text_through_unescaped(
    area: Area, session: AsyncSession
) -> None:
    conference = await repository.get_by_slug(session, SLUG)
    await add_person(session, conference, "eve", first_name=HOSTILE, last_name="Muster")
    await session.commit()
    page = await area.client.get(f"{AREA}/preview?kind=invitation&email=eve@example.org")
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co Muster"
    assert "<script>alert" not in page.text and escaped in _text_part(page.text)
    frame = await area.client.get(_frame_src(page.text))
    assert "<script>" not in frame.text and escaped in frame.text
    missing = await area.client.get(f"{AREA}/preview?kind=invitation&email=nobody@example.org")
    assert 'aria-describedby="f-email-error' in missing.text
    assert "Keine Person mit dieser E-Mail-Adresse" in missing.text
    assert '<pre class="mail-text">' not in missing.text
    odd = await area.client.get(f"{AREA}/preview?kind=<b>&language=xx")
    assert odd.status_code == 200 and "<b>" not in odd.text.split("<main", 1)[1]


@pytest.mark.asyncio
async def test_the_outbox_lists_mail_by_state_a_page_at_a_time(
    area: Area, session: AsyncSession
) -> None:
    await area.send()
    await area.settled()
    listing = await area.client.get(f"{AREA}/outbox")
    assert listing.status_code == 200
    body = listing.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == 4
    for address in PEOPLE:
        assert f"<td>{address}</td>" in body
    assert "<td>Einladung</td>" in body and "<td>in Warteschlange</td>" in body
    assert "01.03.2027, 09:12" in body  # the conference's time zone
    sent = await area.client.get(f"{AREA}/outbox?state=sent")
    assert "<tbody>" not in sent.text
    odd = await area.client.get(f"{AREA}/outbox?state=<x>&page=-1")
    assert odd.status_code == 200


@pytest.mark.asyncio
async def test_only_the_conferences_organisers_reach_the_area(site: Site) -> None:
    paths = ["", "/progress", "/preview", "/preview/html", "/outbox"]
    for email, allowed in ((EVERYTHING, True), (OTHER_ORGANISER, False), (CHECKIN, False)):
        async with site.signed_in(email) as (client, csrf):
            for path in paths:
                if path == "/progress" and allowed:
                    continue  # a stream; read in the tests above
                response = await client.get(f"/admin/{SLUG}/mail{path}")
                assert response.status_code == (200 if allowed else 403), (email, path)
            send = await client.post(f"/admin/{SLUG}/mail/send", data={"csrf_token": csrf})
            assert send.status_code == (303 if allowed else 403), email
            retry = await client.post(f"/admin/{SLUG}/mail/retry", data={"csrf_token": csrf})
            assert retry.status_code == (303 if allowed else 403), email
    async with site.signed_in(OTHER_ORGANISER) as (client, _):
        assert (await client.get(f"/admin/{OTHER}/mail")).status_code == 200
    async with site.browser() as anonymous:
        response = await anonymous.get(f"/admin/{SLUG}/mail/progress")
        assert response.status_code == 303 and "/admin/login" in response.headers["location"]


@pytest.mark.asyncio
async def test_the_test_mailbox_shows_the_html_part_in_a_sandboxed_frame(live: Staff) -> None:
    when = datetime(2027, 3, 18, 8, tzinfo=UTC)
    name, bad = await deliver(live.settings, invitation(1, when), hostile())
    await live.signed_in()
    page = await live.client.get(f"/admin/mail/{name}")
    assert f'<iframe class="mail-frame" sandbox src="/admin/mail/{name}/html"' in page.text
    assert "html-only" not in page.text  # never inside the staff page
    frame = await live.client.get(f"/admin/mail/{name}/html")
    assert frame.status_code == 200
    assert frame.text.strip() == '<p class="html-only">Nur in der HTML-Fassung</p>'
    csp = frame.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "sandbox" in csp
    assert (await live.client.get(f"/admin/mail/{bad}/html")).status_code == 200
    assert (await live.client.get("/admin/mail/missing.eml/html")).status_code == 404
    live.client.cookies.clear()
    anonymous = await live.client.get(f"/admin/mail/{name}/html")
    assert anonymous.status_code == 303
