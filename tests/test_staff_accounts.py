"""Staff accounts end to end: `users add` on the command line, the mailed link, choosing a
password in the browser, a reset, and what a password change does to open sessions.

The CLI runs as a subprocess on the test's database; the mail it queues is read from the
outbox as the sender would send it; the pages are served by uvicorn on loopback.
"""

from __future__ import annotations

import email
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import LinkPurpose, StaffAudit, StaffRole, StaffUser
from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.mail.models import OutboxMessage
from orchestrator.web.app import create_app
from tests.conftest import SAMPLE_TOML
from tests.live import serve
from tests.staff_helpers import PASSWORD, add_staff
from tests.test_cli import cli
from tests.test_cli import env as env
from tests.test_staff_login import Staff, berlin, csrf_of

LINK = re.compile(r"https?://\S+/admin/password/([A-Za-z0-9_-]{43})")
NEW_PASSWORD = "ein langer neuer Satz als Passwort"


async def _mails(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[EmailMessage]:
    async with sessions() as session:
        bodies = await session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == kind))
        return [email.message_from_bytes(b, policy=default) for b in bodies]


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_users_add_prints_and_mails_a_set_password_link(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert cli(env, "conference", "import", str(SAMPLE_TOML)).returncode == 0
    made = cli(
        env, "users", "add", "Erste@Example.org", "--role", "organiser", "--name", "Eva Erste"
    )
    assert made.returncode == 0, made.stderr
    [token] = LINK.findall(made.stdout)
    again = cli(
        env,
        "users",
        "add",
        "erste@example.org",
        "--role",
        "checkin",
        "--conference",
        "ik-heinsberg-2027",
    )
    assert again.returncode == 0, again.stderr
    assert LINK.findall(again.stdout) != [token]  # a new link; the first one stops working
    for wrong in (
        ["users", "add", "x@example.org", "--role", "moderator"],
        ["users", "add", "x@example.org", "--role", "checkin"],
        ["users", "add", "kein-at-zeichen", "--role", "organiser"],
        [
            "users",
            "add",
            "x@example.org",
            "--role",
            "moderator",
            "--conference",
            "ik-heinsberg-2027",
            "--forum",
            "no-such-forum",
        ],
        ["users", "add", "x@example.org", "--role", "admin"],
    ):
        refused = cli(env, *wrong)
        assert refused.returncode != 0, wrong
        assert "Traceback" not in refused.stderr + refused.stdout, wrong


@pytest_asyncio.fixture
async def live(settings: Settings, session: AsyncSession) -> AsyncIterator[Staff]:
    clock = FrozenClock(berlin(9, 12))
    async with (
        serve(create_app(settings, clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        yield Staff(client, clock, settings)


@pytest.mark.asyncio
async def test_a_new_account_chooses_its_password_through_the_link(
    live: Staff, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user = await accounts.add_user(session, "neu@example.org", StaffRole.ORGANISER, live.clock())
    token = await accounts.issue_link(session, user, LinkPurpose.SET_PASSWORD, live.clock())
    await session.commit()
    assert (await live.login("neu@example.org", "anything at all")).status_code == 401
    form = await live.client.get(f"/admin/password/{token}")
    assert form.status_code == 200 and "neu@example.org" in form.text
    data = {"csrf_token": csrf_of(form.text), "password": "kurz", "repeat": "kurz"}
    short = await live.client.post(f"/admin/password/{token}", data=data)
    assert short.status_code == 422 and "mindestens 10 Zeichen" in short.text
    data |= {"password": NEW_PASSWORD, "repeat": NEW_PASSWORD + "!"}
    mismatch = await live.client.post(f"/admin/password/{token}", data=data)
    assert mismatch.status_code == 422 and "nicht überein" in mismatch.text
    data |= {"repeat": NEW_PASSWORD}
    done = await live.client.post(f"/admin/password/{token}", data=data)
    assert done.status_code == 303 and done.headers["location"] == "/admin"
    assert (await live.client.get("/admin")).status_code == 200  # signed in
    spent = await live.client.get(f"/admin/password/{token}")
    assert spent.status_code == 404 and "nicht mehr" in spent.text
    live.client.cookies.clear()
    assert (await live.login("neu@example.org", NEW_PASSWORD)).status_code == 303
    async with sessions() as check:
        actions = list(await check.scalars(select(StaffAudit.action).order_by(StaffAudit.id)))
        stored = await check.scalar(select(StaffUser.password_hash))
    assert actions == ["login_failed", "password_set", "login"]
    assert stored is not None and stored.startswith("$argon2id$") and NEW_PASSWORD not in stored


@pytest.mark.asyncio
async def test_a_link_expires(live: Staff, session: AsyncSession) -> None:
    user = await accounts.add_user(session, "spaet@example.org", StaffRole.ORGANISER, live.clock())
    token = await accounts.issue_link(session, user, LinkPurpose.SET_PASSWORD, live.clock())
    await session.commit()
    live.clock.advance(timedelta(days=7, seconds=1))
    assert (await live.client.get(f"/admin/password/{token}")).status_code == 404


@pytest.mark.asyncio
async def test_a_reset_mails_a_link_and_the_new_password_ends_other_sessions(
    live: Staff, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_staff(session)
    await live.signed_in()
    other_device = httpx.AsyncClient(
        base_url=str(live.client.base_url), cookies=live.client.cookies
    )
    async with other_device:
        assert (await other_device.get("/admin")).status_code == 200
        async with httpx.AsyncClient(base_url=str(live.client.base_url)) as anonymous:
            form = await anonymous.get("/admin/password-reset")
            for address in ("orga@example.org", "nobody@example.org"):
                sent = await anonymous.post(
                    "/admin/password-reset",
                    data={"email": address, "csrf_token": csrf_of(form.text)},
                )
                assert sent.status_code == 200 and "Wenn es für diese Adresse" in sent.text
        [mail] = await _mails(sessions, "staff_link")  # only the existing account got one
        assert mail["To"].addresses[0].addr_spec == "orga@example.org"
        assert mail["Subject"] == "Neues Passwort für den Konferenz-Orchestrator"
        [token] = LINK.findall(_text(mail))
        form = await live.client.get(f"/admin/password/{token}")
        data = {"csrf_token": csrf_of(form.text), "password": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        assert (await live.client.post(f"/admin/password/{token}", data=data)).status_code == 303
        assert (await other_device.get("/admin")).status_code == 303  # signed out there
    live.client.cookies.clear()
    assert (await live.login(password=PASSWORD)).status_code == 401
    assert (await live.login(password=NEW_PASSWORD)).status_code == 303
