"""Who may do what: staff pages and the staff API by role, over real HTTP on both backends.

Two conferences (the sample and a copy under another slug); accounts as the CLI makes them:
an organiser of everything, an organiser of the other conference only, check-in staff and a
moderator of the sample. Each walks the pages and API calls it may and may not use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffRole
from orchestrator.clock import FrozenClock
from orchestrator.conferences import service as conferences
from orchestrator.config import Settings
from orchestrator.web.app import create_app
from tests.conftest import API_KEY, SAMPLE_TOML, load_sample
from tests.live import serve
from tests.staff_helpers import NOW, PASSWORD, add_staff
from tests.test_staff_login import SLUG, berlin, csrf_of

OTHER = "other-2027"
EVERYTHING = "alle@example.org"
OTHER_ORGANISER = "andere@example.org"
CHECKIN = "einlass@example.org"
MODERATOR = "moderation@example.org"


@dataclass
class Site:
    base_url: str
    settings: Settings

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    @asynccontextmanager
    async def signed_in(self, email: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        """A browser signed in as `email`, and its session's CSRF token."""
        async with self.browser() as client:
            form = await client.get("/admin/login")
            data = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(form.text)}
            assert (await client.post("/admin/login", data=data)).status_code == 303
            home = await client.get("/admin")
            yield client, csrf_of(home.text)


@pytest_asyncio.fixture
async def site(settings: Settings, session: AsyncSession) -> AsyncIterator[Site]:
    await load_sample(session)
    sample = conferences.parse_spec_file(SAMPLE_TOML)
    info = sample.conference.model_copy(update={"slug": OTHER})
    spec = sample.model_copy(update={"conference": info})
    await conferences.import_spec(session, spec)
    await session.commit()
    await add_staff(session, EVERYTHING)
    await add_staff(session, OTHER_ORGANISER, conference=OTHER)
    await add_staff(session, CHECKIN, StaffRole.CHECKIN, conference=SLUG)
    await add_staff(session, MODERATOR, StaffRole.MODERATOR, conference=SLUG, forum="sprache")
    async with serve(create_app(settings, FrozenClock(berlin(9, 12)))) as base_url:
        yield Site(base_url, settings)


PAGES = {  # page -> who may open it
    f"/admin/{SLUG}": {EVERYTHING},
    f"/admin/{OTHER}": {EVERYTHING, OTHER_ORGANISER},
    f"/admin/{SLUG}/checkin": {EVERYTHING, CHECKIN},
    f"/admin/{OTHER}/checkin": {EVERYTHING, OTHER_ORGANISER},
    "/admin/mail": {EVERYTHING},
    f"/admin/{SLUG}/team": {EVERYTHING},
    f"/admin/{OTHER}/team": {EVERYTHING, OTHER_ORGANISER},
    "/admin/account": {EVERYTHING, OTHER_ORGANISER, CHECKIN, MODERATOR},
    "/admin": {EVERYTHING, OTHER_ORGANISER, CHECKIN, MODERATOR},
}


@pytest.mark.asyncio
async def test_staff_pages_by_role(site: Site) -> None:
    seen = {}
    for email in (EVERYTHING, OTHER_ORGANISER, CHECKIN, MODERATOR):
        async with site.signed_in(email) as (client, _):
            for path in PAGES:
                seen[email, path] = (await client.get(path)).status_code
    expected = {
        (email, path): 200 if email in allowed else 403
        for (email, path) in seen
        for allowed in [PAGES[path]]
    }
    assert seen == expected
    async with site.browser() as anonymous:
        for path in PAGES:
            answer = await anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith(
                "/admin/login"
            ), path


@pytest.mark.asyncio
async def test_a_check_in_helper_sees_only_the_check_in(site: Site) -> None:
    async with site.signed_in(CHECKIN) as (client, _):
        home = (await client.get("/admin")).text
        assert f'href="/admin/{SLUG}/checkin"' in home
        assert "/admin/mail" not in home and OTHER not in home
        checkin = (await client.get(f"/admin/{SLUG}/checkin")).text
        assert 'href="/admin/mail"' not in checkin  # no link to a page it may not open
        refused = await client.get("/admin/mail", headers={"Accept": "application/json"})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        api = await client.get(f"/api/v1/conferences/{SLUG}/participants")
        assert api.status_code == 403  # the staff API is for organisers


API = [
    ("GET", f"/api/v1/conferences/{SLUG}/participants"),
    ("GET", f"/api/v1/conferences/{OTHER}/participants"),
    ("GET", "/api/v1/mail-sink"),
]


@pytest.mark.asyncio
async def test_api_by_caller(site: Site, session: AsyncSession) -> None:
    other = await accounts.find_user(session, OTHER_ORGANISER)
    assert other is not None
    token = await accounts.make_api_token(session, other, "Skript", NOW)
    await session.commit()
    callers = {
        "operator key": {"Authorization": f"Bearer {API_KEY}"},
        "api token": {"Authorization": f"Bearer {token}"},
        "wrong token": {"Authorization": "Bearer orch_not-a-token"},
        "nobody": {},
    }
    seen = {}
    async with site.browser() as client:
        for caller, headers in callers.items():
            for method, path in API:
                seen[caller, path] = (
                    await client.request(method, path, headers=headers)
                ).status_code
    assert seen == {
        ("operator key", API[0][1]): 200,
        ("operator key", API[1][1]): 200,
        ("operator key", API[2][1]): 200,
        ("api token", API[0][1]): 403,
        ("api token", API[1][1]): 200,
        ("api token", API[2][1]): 403,
        ("wrong token", API[0][1]): 401,
        ("wrong token", API[1][1]): 401,
        ("wrong token", API[2][1]): 401,
        ("nobody", API[0][1]): 401,
        ("nobody", API[1][1]): 401,
        ("nobody", API[2][1]): 401,
    }
    async with site.browser() as client:
        listed = await client.get("/api/v1/conferences", headers=callers["api token"])
        assert [c["slug"] for c in listed.json()] == [OTHER]
    user = await accounts.find_user(session, OTHER_ORGANISER)
    assert user is not None
    [row] = await _tokens(session, user.id)
    await accounts.revoke_api_token(session, user, row, NOW)
    await session.commit()
    async with site.browser() as client:
        revoked = await client.get(API[1][1], headers=callers["api token"])
        assert revoked.status_code == 401


async def _tokens(session: AsyncSession, user_id: int) -> list[int]:
    from sqlalchemy import select

    from orchestrator.accounts.models import ApiToken

    return list(await session.scalars(select(ApiToken.id).where(ApiToken.user_id == user_id)))


@pytest.mark.asyncio
async def test_the_api_takes_a_session_and_its_csrf_token_for_changes(site: Site) -> None:
    person = {"email": "neu@example.org", "first_name": "Neu"}
    path = f"/api/v1/conferences/{OTHER}/participants"
    async with site.signed_in(OTHER_ORGANISER) as (client, csrf):
        assert (await client.get(path)).status_code == 200
        assert (await client.post(path, json=person)).status_code == 403  # no CSRF header
        made = await client.post(path, json=person, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        elsewhere = await client.get(f"/api/v1/conferences/{SLUG}/participants")
        assert elsewhere.status_code == 403
