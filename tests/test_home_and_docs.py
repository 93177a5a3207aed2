"""/ for people without a link, and /docs served offline from the package under a CSP."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import load_sample
from tests.test_accessibility import Page
from tests.test_accessibility import page as page
from tests.test_accessibility import site as site
from tests.test_staff_login import Staff
from tests.test_staff_login import live as live


@pytest.mark.asyncio
async def test_the_start_page_tells_participants_where_their_link_is(
    live: Staff, session: AsyncSession
) -> None:
    conference = await load_sample(session)
    page = await live.client.get("/", headers={"Accept-Language": "de"})
    assert page.status_code == 200
    assert "Ihr persönlicher Link steht in Ihrer Einladungs-E-Mail" in page.text
    assert f'href="mailto:{conference.organiser_email}"' in page.text
    assert 'href="/admin/login"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # no scripts at all
    english = await live.client.get("/?lang=en")
    assert "Your personal link is in your invitation email" in english.text
    await live.signed_in()
    staff = await live.client.get("/")
    assert staff.status_code == 303 and staff.headers["location"] == "/admin"


@pytest.mark.asyncio
async def test_docs_load_only_our_own_files(live: Staff) -> None:
    docs = await live.client.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(source.startswith("/static/") for source in sources), sources
    for source in sources:
        assert (await live.client.get(source)).status_code == 200, source
    assert "<script>" not in docs.text  # nothing inline
    assert (await live.client.get("/redoc")).status_code == 404
    assert (await live.client.get("/openapi.json")).status_code == 200


@pytest.mark.asyncio
async def test_docs_render_in_the_browser_under_their_csp(
    page: Page, site: tuple[str, Any]
) -> None:
    base, _ = site
    await page.open(f"{base}/docs")
    for _ in range(50):  # Swagger UI renders after its script ran (bounded wait)
        if await page.evaluate("!!document.querySelector('.opblock')"):
            break
        await page.evaluate("new Promise(r => setTimeout(r, 100))")
    text = await page.evaluate("document.body.innerText")
    assert "/api/v1/conferences" in text
    await page.open(f"{base}/")
    assert await page.violations() == []
    await page.open(f"{base}/?lang=en")
    assert await page.violations() == []
