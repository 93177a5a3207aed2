"""Staff sign-in for /admin over real HTTP (uvicorn on loopback), SQLite and PostgreSQL.

Accounts are made as the CLI makes them (tests/staff_helpers.py); the browser is an httpx
client with a cookie jar that follows no redirects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffLogin
from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.web import staff
from orchestrator.web.app import create_app
from tests.conftest import load_sample
from tests.live import serve
from tests.staff_helpers import ORGANISER, PASSWORD, add_staff

BERLIN = ZoneInfo("Europe/Berlin")
SLUG = "ik-heinsberg-2027"
CHECKIN = f"/admin/{SLUG}/checkin"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def berlin(hour: int, minute: int = 0, day: int = 18) -> datetime:
    """A wall-clock time around the sample conference's day."""
    return datetime(2027, 3, day, hour, minute, tzinfo=BERLIN)


def admin_app(settings: Settings, clock: FrozenClock) -> FastAPI:
    """The app as deployed (staff routers included by create_app)."""
    return create_app(settings, clock)


def csrf_of(html: str) -> str:
    """The first CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found, html
    return found.group(1)


def set_cookie(response: httpx.Response, name: str) -> SimpleCookie:
    """The Set-Cookie header of one cookie, parsed (flags included)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            return cookie
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


@dataclass
class Staff:
    client: httpx.AsyncClient
    clock: FrozenClock
    settings: Settings

    async def login(
        self, email: str = ORGANISER, password: str = PASSWORD, next_url: str = ""
    ) -> httpx.Response:
        """Open the sign-in form and send it with these credentials."""
        form = await self.client.get("/admin/login")
        assert form.status_code == 200, form.text
        data = {
            "email": email,
            "password": password,
            "csrf_token": csrf_of(form.text),
            "next": next_url,
        }
        return await self.client.post("/admin/login", data=data)

    async def signed_in(self, email: str = ORGANISER, password: str = PASSWORD) -> str:
        """Sign in; the session's CSRF token (from the start page)."""
        self.client.cookies.clear()
        response = await self.login(email, password)
        assert response.status_code == 303, response.text
        page = await self.client.get("/admin")
        assert page.status_code == 200 and "Abmelden" in page.text
        return csrf_of(page.text)


@pytest_asyncio.fixture
async def live(settings: Settings, session: AsyncSession) -> AsyncIterator[Staff]:
    """A staff browser (cookie jar, no redirects followed) against the app on loopback, with
    an organiser of every conference (ORGANISER, PASSWORD)."""
    await add_staff(session)
    clock = FrozenClock(berlin(9, 12))
    async with (
        serve(admin_app(settings, clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        yield Staff(client, clock, settings)


@pytest.mark.asyncio
async def test_login_sets_a_strict_http_only_session_cookie(
    live: Staff, session: AsyncSession
) -> None:
    await load_sample(session)
    response = await live.login(next_url=CHECKIN)
    assert response.status_code == 303
    assert response.headers["location"] == CHECKIN
    morsel = set_cookie(response, staff.COOKIE)[staff.COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # base_url is http://
    assert int(morsel["max-age"]) == 12 * 3600
    assert len(morsel.value) >= 43  # 256 random bits
    page = await live.client.get(CHECKIN)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '<meta name="csrf-token"' in page.text


@pytest.mark.asyncio
async def test_the_session_is_kept_as_a_hash_only(live: Staff, session: AsyncSession) -> None:
    response = await live.login()
    token = set_cookie(response, staff.COOKIE)[staff.COOKIE].value
    [stored] = (await session.execute(select(StaffLogin.token_hash))).scalars().all()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored


@pytest.mark.asyncio
async def test_cookie_is_secure_when_served_over_https(
    settings: Settings, session: AsyncSession
) -> None:
    await add_staff(session)
    settings.base_url = "https://orchestrator.example.org"
    clock = FrozenClock(berlin(9, 12))
    async with (
        serve(admin_app(settings, clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        form = await client.get("/admin/login")
        assert set_cookie(form, staff.LOGIN_COOKIE)[staff.LOGIN_COOKIE]["secure"] is True
        # The jar holds back a Secure cookie over http; send the nonce by hand.
        nonce = set_cookie(form, staff.LOGIN_COOKIE)[staff.LOGIN_COOKIE].value
        response = await client.post(
            "/admin/login",
            data={"email": ORGANISER, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            headers={"Cookie": f"{staff.LOGIN_COOKIE}={nonce}"},
        )
    assert response.status_code == 303
    assert set_cookie(response, staff.COOKIE)[staff.COOKIE]["secure"] is True


@pytest.mark.asyncio
async def test_a_wrong_password_is_refused_and_the_account_throttled(live: Staff) -> None:
    for _ in range(accounts.ACCOUNT_LIMIT):
        refused = await live.login(password="not the password")
        assert refused.status_code == 401
        assert "stimmen nicht" in refused.text
        assert staff.COOKIE not in refused.headers.get("set-cookie", "")
        assert f'value="{ORGANISER}"' in refused.text  # the address stays in the form
    blocked = await live.login()  # even the right password, while blocked
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert staff.COOKIE not in live.client.cookies
    live.clock.advance(accounts.THROTTLE_WINDOW + timedelta(seconds=1))
    assert (await live.login()).status_code == 303


@pytest.mark.asyncio
async def test_the_throttle_holds_with_a_rotating_forwarded_for(live: Staff) -> None:
    """uvicorn trusts X-Forwarded-For from loopback, so each try looks like a new client:
    the per-account limit must hold all the same."""
    for n in range(accounts.ACCOUNT_LIMIT):
        live.client.headers["X-Forwarded-For"] = f"203.0.113.{n + 1}"
        assert (await live.login(password=f"guess {n}")).status_code == 401
    live.client.headers["X-Forwarded-For"] = "198.51.100.77"
    assert (await live.login()).status_code == 429


@pytest.mark.asyncio
async def test_an_unknown_address_answers_like_a_wrong_password(live: Staff) -> None:
    unknown = await live.login(email="nobody@example.org")
    wrong = await live.login(password="wrong password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("nobody@example.org", ORGANISER) == wrong.text.replace(
        csrf_of(wrong.text), csrf_of(unknown.text)
    )


@pytest.mark.asyncio
async def test_logout_ends_the_session_on_the_server(live: Staff, session: AsyncSession) -> None:
    await load_sample(session)
    token = await live.signed_in()
    cookie = live.client.cookies.get(staff.COOKIE, "")
    response = await live.client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    morsel = set_cookie(response, staff.COOKIE)[staff.COOKIE]
    assert morsel.value == "" and int(morsel["max-age"]) == 0
    assert (await live.client.get(CHECKIN)).status_code == 303
    live.client.cookies.set(staff.COOKIE, cookie or "")  # a copy kept from before is worthless
    assert (await live.client.get(CHECKIN)).status_code == 303


@pytest.mark.asyncio
async def test_logout_needs_the_csrf_token(live: Staff) -> None:
    await live.signed_in()
    refused = await live.client.post("/admin/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert "Es wurde nichts gespeichert" in refused.text
    assert "set-cookie" not in refused.headers
    assert (await live.client.get("/admin")).status_code == 200


@pytest.mark.asyncio
async def test_pages_redirect_to_the_login_without_a_session(
    live: Staff, session: AsyncSession
) -> None:
    await load_sample(session)
    page = await live.client.get(f"{CHECKIN}?session=forums")
    assert page.status_code == 303
    assert page.headers["location"] == "/admin/login?next=" + quote(
        f"{CHECKIN}?session=forums", safe=""
    )
    unknown = await live.client.get("/admin/no-such-conference/checkin")
    assert unknown.status_code == 303  # nothing revealed before the login
    fetch = await live.client.post(
        CHECKIN, json={"code": "x"}, headers={"Accept": "application/json"}
    )
    assert fetch.status_code == 401 and fetch.json()["code"] == "login_required"
    form = await live.client.get(page.headers["location"])
    assert f'name="next" value="{CHECKIN}?session=forums"' in form.text


@pytest.mark.asyncio
async def test_login_goes_only_to_admin_pages(live: Staff) -> None:
    for target in ("https://evil.example/", "//evil.example/admin/", "/admin\\@evil", "/p/x"):
        live.client.cookies.clear()
        response = await live.login(next_url=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/admin", target


@pytest.mark.asyncio
async def test_forged_and_expired_cookies_are_refused(live: Staff, session: AsyncSession) -> None:
    await load_sample(session)
    response = await live.login()
    value = set_cookie(response, staff.COOKIE)[staff.COOKIE].value
    for cookie in (value[:-2] + "AA", "x" * 43, value + "x", "v1.organiser.1.2.3"):
        live.client.cookies.clear()
        live.client.cookies.set(staff.COOKIE, cookie)
        assert (await live.client.get(CHECKIN)).status_code == 303, cookie
    live.client.cookies.clear()
    live.client.cookies.set(staff.COOKIE, value)
    assert (await live.client.get(CHECKIN)).status_code == 200
    live.clock.advance(timedelta(hours=12))
    assert (await live.client.get(CHECKIN)).status_code == 303


@pytest.mark.asyncio
async def test_login_form_is_csrf_protected(live: Staff) -> None:
    form = await live.client.get("/admin/login")
    credentials = {"email": ORGANISER, "password": PASSWORD}
    missing = await live.client.post("/admin/login", data=credentials)
    assert missing.status_code == 403
    assert staff.COOKIE not in missing.headers.get("set-cookie", "")
    live.client.cookies.clear()  # a forged cross-site post carries no nonce cookie
    foreign = await live.client.post(
        "/admin/login", data={**credentials, "csrf_token": csrf_of(form.text)}
    )
    assert foreign.status_code == 403


@pytest.mark.asyncio
async def test_signed_in_start_page_lists_the_conferences(
    live: Staff, session: AsyncSession
) -> None:
    conference = await load_sample(session)
    await live.signed_in()
    page = await live.client.get("/admin")
    assert f'href="/admin/{SLUG}"' in page.text
    assert conference.title in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    signed_in = await live.client.get("/admin/login?next=/admin/mail")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin/mail"
