"""Staff pages in a real browser (Playwright, Debian's Chromium): sign-in by keyboard, what
each role reaches, and axe-core on every page in both languages at 1280 px and 360 px."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts.models import StaffRole
from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.participants.models import Person
from orchestrator.web.app import create_app
from tests.browser.harness import browser as browser
from tests.browser.harness import check_everywhere, new_page, screenshot, violations
from tests.conftest import load_sample
from tests.live import serve
from tests.staff_helpers import ORGANISER, PASSWORD, add_staff

SLUG = "ik-heinsberg-2027"
HELPER = "einlass@example.org"
MODERATOR = "moderation@example.org"


@pytest_asyncio.fixture
async def site(settings: Settings, session: AsyncSession) -> AsyncIterator[str]:
    """The app on loopback: the sample conference, a few people, three staff accounts."""
    conference = await load_sample(session)
    session.add_all(
        Person(conference_id=conference.id, email=f"p{n}@example.org", first_name=f"Person {n}")
        for n in range(5)
    )
    await session.commit()
    await add_staff(session)
    await add_staff(session, HELPER, StaffRole.CHECKIN, conference=SLUG)
    await add_staff(session, MODERATOR, StaffRole.MODERATOR, conference=SLUG, forum="sprache")
    clock = FrozenClock(datetime(2027, 3, 18, 9, 30, tzinfo=ZoneInfo("Europe/Berlin")))
    async with serve(create_app(settings, clock=clock)) as base_url:
        yield base_url


def signed_in_as(base: str, email: str) -> Callable[[Page], Awaitable[None]]:
    async def sign_in(page: Page) -> None:
        await page.goto(f"{base}/admin/login")
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/admin")

    return sign_in


@pytest.mark.asyncio
async def test_an_organiser_signs_in_by_keyboard_and_finds_the_next_step(
    browser: Browser, site: str
) -> None:
    page = await new_page(browser, 1280, "de")
    await page.goto(f"{site}/admin/{SLUG}")  # a deep link: sign in first, then there
    assert page.url.startswith(f"{site}/admin/login?next=")
    await page.keyboard.press("Tab")  # the skip link
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "email"
    await page.keyboard.type(ORGANISER)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{site}/admin/{SLUG}")
    assert (
        await page.inner_text("h1")
        == "Integrationskonferenz im Kreis Heinsberg – gemeinsam vorankommen"
    )
    assert "5 Personen haben noch kein Forum gewählt" not in await page.inner_text("main")
    assert await page.is_visible("text=Nächster Schritt")
    current = await page.get_attribute("nav.section-nav [aria-current=page]", "href")
    assert current == f"/admin/{SLUG}"
    await screenshot(page, "organiser overview after keyboard sign-in")


@pytest.mark.asyncio
async def test_staff_pages_have_no_axe_violations(browser: Browser, site: str) -> None:
    anonymous = ["/admin/login", "/admin/password-reset", "/"]
    organiser = [
        "/admin",
        f"/admin/{SLUG}",
        f"/admin/{SLUG}/checkin",
        f"/admin/{SLUG}/team",
        f"/admin/{SLUG}/settings",
        f"/admin/{SLUG}/people",
        f"/admin/{SLUG}/people/new",
        f"/admin/{SLUG}/people/import",
        f"/admin/{SLUG}/forums",
        f"/admin/{SLUG}/forums/balance",
        f"/admin/{SLUG}/mail",
        f"/admin/{SLUG}/mail/outbox",
        f"/admin/{SLUG}/mail/preview",
        f"/admin/{SLUG}/attendance",
        "/admin/new",
        "/admin/account",
        "/admin/mail",
    ]
    helper = ["/admin", f"/admin/{SLUG}/checkin", f"/admin/{SLUG}"]  # the last one is a 403
    found = await check_everywhere(browser, site, anonymous, label="anonymous ")
    found |= await check_everywhere(
        browser, site, organiser, signed_in_as(site, ORGANISER), "organiser "
    )
    found |= await check_everywhere(browser, site, helper, signed_in_as(site, HELPER), "helper ")
    assert found == {}
    page = await new_page(browser)
    await page.set_content("<html><body><img src='x.png'><input></body></html>")
    assert len(await violations(page)) >= 2  # axe does run and does see problems


@pytest.mark.asyncio
async def test_check_in_staff_reach_the_check_in_and_nothing_else(
    browser: Browser, site: str
) -> None:
    page = await new_page(browser, 360, "de")
    await signed_in_as(site, HELPER)(page)
    links = await page.eval_on_selector_all(
        "main a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert links == [f"/admin/{SLUG}/checkin"]
    await page.click(f"a[href='/admin/{SLUG}/checkin']")
    await page.wait_for_url(f"{site}/admin/{SLUG}/checkin")
    assert await page.inner_text("h1") == "Einlass vor Ort"
    for path in (f"/admin/{SLUG}", "/admin/mail"):
        response = await page.goto(f"{site}{path}")
        assert response is not None and response.status == 403, path
        assert "Kein Zugriff auf diese Seite" in await page.inner_text("h1")
    api = await page.request.get(f"{site}/api/v1/conferences/{SLUG}/participants")
    assert api.status == 403


@pytest.mark.asyncio
async def test_a_moderator_does_not_reach_the_organisers_pages(browser: Browser, site: str) -> None:
    page = await new_page(browser, 1280, "en")
    await signed_in_as(site, MODERATOR)(page)
    for path in (f"/admin/{SLUG}", f"/admin/{SLUG}/checkin", "/admin/mail"):
        response = await page.goto(f"{site}{path}")
        assert response is not None and response.status == 403, path
    assert "No access to this page" in await page.inner_text("h1")
