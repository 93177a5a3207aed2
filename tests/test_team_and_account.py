"""Inviting staff from the browser (/admin/{slug}/team) and one's own account (/admin/account):
language, password, API keys. Over real HTTP on both backends."""

from __future__ import annotations

import email
import re
from email.policy import default

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.mail.models import OutboxMessage
from tests.conftest import load_sample
from tests.staff_helpers import ORGANISER, PASSWORD, add_staff
from tests.test_staff_login import SLUG, Staff, csrf_of
from tests.test_staff_login import live as live

TEAM = f"/admin/{SLUG}/team"
LINK = re.compile(r"/admin/password/([A-Za-z0-9_-]{43})")
NEW = "ein ganz neues langes Passwort"


async def _links(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """(recipient, token) of every staff link mail in the outbox."""
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.recipient, OutboxMessage.body).where(
                OutboxMessage.kind == "staff_link"
            )
        )
        found = []
        for recipient, body in rows:
            message = email.message_from_bytes(body, policy=default)
            part = message.get_body(("plain",))
            assert part is not None
            found.append((recipient, LINK.findall(part.get_content())[0]))
        return found


@pytest.mark.asyncio
async def test_an_organiser_invites_check_in_staff_who_then_signs_in(
    live: Staff, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_sample(session)
    csrf = await live.signed_in()
    form = {"csrf_token": csrf, "email": "Helfer@Example.org", "name": "Hanna Helfer"}
    sent = await live.client.post(TEAM, data={**form, "role": "checkin"})
    assert sent.status_code == 303 and sent.headers["location"] == f"{TEAM}?done=invited"
    page = await live.client.get(sent.headers["location"])
    assert "Die Einladung ist unterwegs" in page.text
    assert "helfer@example.org" in page.text and "eingeladen, noch kein Passwort" in page.text
    [(recipient, token)] = await _links(sessions)
    assert recipient == "helfer@example.org"
    async with httpx.AsyncClient(base_url=str(live.client.base_url)) as helper:
        choose = await helper.get(f"/admin/password/{token}")
        data = {"csrf_token": csrf_of(choose.text), "password": NEW, "repeat": NEW}
        assert (await helper.post(f"/admin/password/{token}", data=data)).status_code == 303
        assert (await helper.get(f"/admin/{SLUG}/checkin")).status_code == 200
        assert (await helper.get(f"/admin/{SLUG}")).status_code == 403
        # The organiser takes the role back: the helper is out at the next request.
        page = await live.client.get(TEAM)
        grant = re.search(r'action="/admin/[^/]+/team/(\d+)/revoke"', page.text)
        assert grant is not None
        revoked = await live.client.post(f"{TEAM}/{grant[1]}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert (await helper.get(f"/admin/{SLUG}/checkin")).status_code == 403


@pytest.mark.asyncio
async def test_inviting_refuses_bad_input_and_names_the_field(
    live: Staff, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_sample(session)
    csrf = await live.signed_in()
    cases = [
        ({"email": "kein-at-zeichen", "role": "checkin"}, 'id="f-email-error"'),
        ({"email": "m@example.org", "role": "moderator", "forum": ""}, 'id="f-forum-error"'),
        ({"email": "m@example.org", "role": "admin"}, 'id="f-role-error"'),
        ({"email": "<b>x</b>@example.org", "role": "checkin"}, 'id="f-email-error"'),
    ]
    for data, marker in cases:
        answer = await live.client.post(TEAM, data={"csrf_token": csrf, **data})
        assert answer.status_code == 422, data
        assert marker in answer.text, data
        assert "<b>x</b>" not in answer.text
    assert await _links(sessions) == []  # nothing stored, nothing sent
    assert (await live.client.post(TEAM, data={"email": "x@example.org"})).status_code == 403


@pytest.mark.asyncio
async def test_a_role_for_someone_with_an_account_sends_no_new_link(
    live: Staff, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_sample(session)
    await add_staff(session, "moderation@example.org")
    csrf = await live.signed_in()
    data = {"csrf_token": csrf, "email": "moderation@example.org", "role": "moderator"}
    added = await live.client.post(TEAM, data={**data, "forum": "sprache"})
    assert added.headers["location"] == f"{TEAM}?done=added"
    assert await _links(sessions) == []
    assert "Moderation von „Sprache" in (await live.client.get(TEAM)).text


@pytest.mark.asyncio
async def test_the_account_page_sets_language_password_and_api_keys(live: Staff) -> None:
    csrf = await live.signed_in()
    assert "Ihr Zugang" in (await live.client.get("/admin/account")).text
    chosen = await live.client.post(
        "/admin/account/language", data={"csrf_token": csrf, "language": "en"}
    )
    assert chosen.status_code == 303
    assert "Your account" in (await live.client.get("/admin/account")).text  # despite de
    wrong = await live.client.post(
        "/admin/account/password",
        data={"csrf_token": csrf, "old_password": "nope", "new_password": NEW, "repeat": NEW},
    )
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.text
    made = await live.client.post(
        "/admin/account/tokens", data={"csrf_token": csrf, "label": "Export"}
    )
    token = re.search(r'<code class="secret">(orch_[A-Za-z0-9_-]+)</code>', made.text)
    assert token is not None
    api = await live.client.get(
        "/api/v1/conferences", headers={"Authorization": f"Bearer {token[1]}"}
    )
    assert api.status_code == 200
    later = await live.client.get("/admin/account")
    assert token[1] not in later.text  # shown once only
    token_id = re.search(r'action="/admin/account/tokens/(\d+)/revoke"', later.text)
    assert token_id is not None
    await live.client.post(f"/admin/account/tokens/{token_id[1]}/revoke", data={"csrf_token": csrf})
    gone = await live.client.get(
        "/api/v1/conferences", headers={"Authorization": f"Bearer {token[1]}"}
    )
    assert gone.status_code == 401
    async with httpx.AsyncClient(
        base_url=str(live.client.base_url), cookies=live.client.cookies
    ) as other_device:
        changed = await live.client.post(
            "/admin/account/password",
            data={"csrf_token": csrf, "old_password": PASSWORD, "new_password": NEW, "repeat": NEW},
        )
        assert changed.status_code == 303
        assert (await live.client.get("/admin")).status_code == 200  # this browser: new session
        assert (await other_device.get("/admin")).status_code == 303  # the other: signed out
    live.client.cookies.clear()
    assert (await live.login(ORGANISER, NEW)).status_code == 303
