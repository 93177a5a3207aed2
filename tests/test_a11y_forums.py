"""axe-core over the organiser's forums pages and the waiting person's page, German and English.

The sample site of tests/test_accessibility.py: Anna in "sprache", Emma in "werte", a third
person on the waiting list. With every other forum closed (no seats) nobody can move, so the
personal page shows the waiting-list state without the change form.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.repository import get_by_slug
from tests.assignment_helpers import set_capacity
from tests.test_accessibility import SLUG, Page, _staff_login, page, site

__all__ = ["page", "site"]  # the fixtures, shared with the accessibility tests

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

FORUMS = f"/admin/{SLUG}/forums"


@pytest.mark.asyncio
async def test_forums_pages_have_no_axe_violations(
    page: Page, site: tuple[str, Any], session: AsyncSession
) -> None:
    base, (people, _) = site
    conference = await get_by_slug(session, SLUG)
    for key, seats in {"sprache": 1, "werte": 1, "bildung": 0, "arbeit": 0}.items():
        await set_capacity(session, conference, key, seats)
    await set_capacity(session, conference, "bleibeperspektive", 0)
    await _staff_login(page, base, FORUMS)
    urls = [
        FORUMS,
        f"{FORUMS}?status=placed&mails=2",
        f"{FORUMS}?status=person_unknown",
        f"{FORUMS}?status=forum_full",
        f"{FORUMS}/balance",
        f"{FORUMS}/balance?overflow=waitlist&status=stale",
    ]
    found = {}
    for url in urls:
        for query in ("", "&lang=en" if "?" in url else "?lang=en"):
            await page.open(base + url + query)
            assert await page.evaluate("document.documentElement.lang") == (query[-2:] or "de")
            found[url + query] = await page.violations()
    text = await page.evaluate("document.body.innerText")
    assert "Something has changed since the preview" in text
    await page.open(f"{base}{FORUMS}")
    text = await page.evaluate("document.body.innerText")
    assert "Warteliste" in text and "waiting@example.org" in text
    waiting = people["waiting"]
    for query in ("", "?lang=en"):
        await page.open(f"{base}/p/{waiting.token}{query}")
        assert await page.evaluate("!document.querySelector('form[action$=\"/forum\"]')")
        found[f"/p/waiting{query}"] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}
