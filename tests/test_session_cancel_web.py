"""A cancelled session over real HTTP and SMTP: its join links, the personal page, the API
action, and the CANCEL delivered after a re-import by the CLI (SQLite and PostgreSQL)."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import icalendar
import pytest
import vobject
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import FrozenClock
from orchestrator.conferences.cancelling import cancel_session
from orchestrator.config import Settings
from orchestrator.participants.models import AttendanceMode, Role
from orchestrator.web.app import create_app
from tests.conftest import API_KEY
from tests.invitation_helpers import conference_with_people, outbox_rows
from tests.live import serve
from tests.sample_world import World, berlin, sample_world, serve_frozen
from tests.smtp_server import SmtpServer, smtp_server_fixture
from tests.test_invites_e2e import _calendar, _cli, _send_invitations, env
from tests.test_session_cancel import without_session

__all__ = ["env", "smtp_server_fixture"]


async def _world(session: AsyncSession) -> World:
    world = await sample_world(
        session, [("anna", Role.PARTICIPANT, "sprache"), ("emma", Role.PARTICIPANT, "werte")]
    )
    for person in world.people.values():
        person.attendance_mode = AttendanceMode.ONLINE
    await session.commit()
    return world


def _page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    return response.text


@pytest.mark.asyncio
async def test_join_link_of_a_cancelled_session_says_so(
    session: AsyncSession, settings: Settings
) -> None:
    world = await _world(session)
    anna, emma, room = world.people["anna"], world.people["emma"], world.rooms["results"]
    async with serve_frozen(settings, FrozenClock(berlin(13, 20))) as client:
        assert (await client.get(f"/j/{anna.token}/{room}")).status_code == 302  # open now
        page = _page(await client.get(f"/p/{anna.token}"), 200)
        assert f"/j/{anna.token}/{room}" in page
        assert "Abgesagt" not in page

        await cancel_session(session, world.conference.slug, "results")
        await session.commit()

        german = _page(await client.get(f"/j/{anna.token}/{room}"), 403)
        assert "<h1>Diese Sitzung wurde abgesagt</h1>" in german
        assert "Ergebnisse der Foren und Ausblick auf das Integrationskonzept" in german
        assert "findet nicht statt" in german and "geschlossen" not in german
        english = _page(await client.get(f"/j/{emma.token}/{room}"), 403)
        assert "<h1>This session has been cancelled</h1>" in english
        assert "will not take place" in english and "closed" not in english
        page = _page(await client.get(f"/p/{anna.token}"), 200)
        assert f"/j/{anna.token}/{room}" not in page  # no join button, but the session shown
        assert "Abgesagt: Diese Sitzung findet nicht statt." in page
        assert "Ergebnisse der Foren" in page
        english_page = _page(await client.get(f"/p/{emma.token}"), 200)
        assert "Cancelled: this session will not take place." in english_page


@pytest.mark.asyncio
async def test_forum_link_of_a_cancelled_round_says_so(
    session: AsyncSession, settings: Settings
) -> None:
    world = await _world(session)
    anna, room = world.people["anna"], world.rooms["sprache"]
    await cancel_session(session, world.conference.slug, "forums")
    await session.commit()
    async with serve_frozen(settings, FrozenClock(berlin(11, 30))) as client:
        text = _page(await client.get(f"/j/{anna.token}/{room}"), 403)
        assert "Diese Sitzung wurde abgesagt" in text and "Sprache" in text
        opening = await client.get(f"/j/{anna.token}/{world.rooms['opening']}")
        assert "abgesagt" not in _page(opening, 403)  # over, not cancelled


@pytest.mark.asyncio
async def test_api_cancels_once_and_not_found_for_unknown(
    session: AsyncSession, settings: Settings
) -> None:
    conference = await conference_with_people(session, invite=True)
    before = len(await outbox_rows(session))
    base = f"/api/v1/conferences/{conference.slug}/sessions"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api,
    ):
        first = await api.post(f"{base}/results/cancel")
        assert first.status_code == 200, first.text
        assert (first.json()["key"], first.json()["status"]) == ("results", "cancelled")
        assert first.json()["sequence"] == 1
        cancels = (await outbox_rows(session))[before:]
        assert [row.kind for row in cancels] == ["cancellation"] * 4

        again = await api.post(f"{base}/results/cancel")
        assert again.status_code == 200 and again.json() == first.json()
        assert len(await outbox_rows(session)) == before + 4  # nothing sent twice
        listed = {s["key"]: s["status"] for s in (await api.get(base)).json()}
        assert listed == {"opening": "scheduled", "forums": "scheduled", "results": "cancelled"}

        assert (await api.post(f"{base}/gibtsnicht/cancel")).status_code == 404
        missing = await api.post("/api/v1/conferences/gibtsnicht/sessions/results/cancel")
        assert missing.status_code == 404
        async with httpx.AsyncClient(base_url=base_url) as anonymous:
            assert (await anonymous.post(f"{base}/opening/cancel")).status_code == 401


@pytest.mark.asyncio
async def test_api_reimport_without_a_session_cancels_it(
    session: AsyncSession, settings: Settings, tmp_path: Path
) -> None:
    conference = await conference_with_people(session, invite=True)
    before = len(await outbox_rows(session))
    shorter = without_session(tmp_path, "opening").read_bytes()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api,
    ):
        url = "/api/v1/conferences/import"
        response = await api.post(url, files={"file": ("c.toml", shorter)})
        assert response.status_code == 200, response.text
        listed = {s["key"]: s["status"] for s in response.json()["sessions"]}
        assert listed == {"opening": "cancelled", "forums": "scheduled", "results": "scheduled"}
    rows = (await outbox_rows(session))[before:]
    assert [row.kind for row in rows] == ["cancellation"] * 4
    assert len({row.recipient for row in rows}) == 4
    assert conference.slug == response.json()["slug"]


def _received(server: SmtpServer, start: int) -> list[tuple[str, EmailMessage]]:
    messages = []
    for received in server.handler.messages[start:]:
        message = email.message_from_bytes(received.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append((received.rcpt_tos[0], message))
    return messages


def _results_uid(message: EmailMessage) -> str:
    """The UID of the results plenary (13:15) in a delivered invitation."""
    for event in icalendar.Calendar.from_ical(_calendar(message)).walk("VEVENT"):
        if event.decoded("DTSTART").hour == 13:
            return str(event["UID"])
    raise AssertionError("no results plenary in the invitation")


def test_dropped_session_delivers_cancel_by_smtp(
    env: dict[str, str], tmp_path: Path, smtp_server: SmtpServer
) -> None:
    _send_invitations(env, tmp_path)
    invited = {rcpt: _results_uid(message) for rcpt, message in _received(smtp_server, 0)}
    assert len(invited) == 3

    imported = _cli(env, "conference", "import", str(without_session(tmp_path, "results")))
    assert "Sitzung results abgesagt" in imported.stderr
    sent = _cli(env, "invites", "send", "ik-heinsberg-2027")
    assert "0 Nachrichten eingereiht" in sent.stdout  # the import queued the CANCELs

    cancels = _received(smtp_server, 3)
    assert sorted(rcpt for rcpt, _ in cancels) == sorted(invited)  # one each, nothing else
    for rcpt, message in cancels:
        parsed = vobject.readOne(_calendar(message).decode("utf-8"))
        assert parsed.method.value == "CANCEL"
        (event,) = parsed.vevent_list
        assert event.uid.value == invited[rcpt]
        assert (event.sequence.value, event.status.value) == ("1", "CANCELLED")
    _cli(env, "conference", "import", str(without_session(tmp_path, "results")))
    _cli(env, "invites", "send", "ik-heinsberg-2027")
    assert smtp_server.handler.count == 6  # the second import withdrew nothing again
