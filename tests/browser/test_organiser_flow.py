"""The organiser's day before the conference, in a real browser, as issue 11 asks for it:
sign in, create the sample conference by upload, import invitees (a column the importer does
not know shows in the preview), run the balancer, send the invitations and watch the bar
reach the end, promote a waitlisted person, excuse someone, download the XLSX export.

The app runs with its in-process worker, so invitations really go through the outbox to the
local mail sink; every step is screenshotted into the CI artifacts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.demo import people
from orchestrator.web.app import create_app
from tests.browser.harness import browser as browser
from tests.browser.harness import new_page, screenshot, violations
from tests.conftest import SAMPLE_TOML
from tests.live import serve
from tests.staff_helpers import ORGANISER, PASSWORD, add_staff

SLUG = "ik-heinsberg-2027"
FORUMS = ["sprache", "werte", "bildung", "arbeit", "bleibeperspektive"]
PEOPLE = 80  # all choose the two smallest forums (30 seats each): 20 wait for a seat
WAIT = 60_000  # ms: the whole run of invitations on a loaded machine


@pytest_asyncio.fixture
async def site(settings: Settings, session: AsyncSession) -> AsyncIterator[str]:
    """An empty installation with one organiser of every conference; worker in-process."""
    await add_staff(session)
    clock = FrozenClock(datetime(2027, 3, 1, 10, tzinfo=ZoneInfo("Europe/Berlin")))
    async with serve(create_app(settings, clock=clock, with_worker=True)) as base_url:
        yield base_url


def invitees(path: Path) -> Path:
    """A CSV as Excel writes it in Germany, with German headers and one unknown column."""
    rows = people.generate(PEOPLE, FORUMS, seed=3)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["E-Mail", "Vorname", "Nachname", "Organisation", "Forum Wunsch 1",
                     "Forum Wunsch 2", "Bemerkung"])  # fmt: skip
    for row in rows:
        writer.writerow([row["email"], row["first_name"], row["last_name"], row["organisation"],
                         "werte", "bleibeperspektive", "vegetarisch"])  # fmt: skip
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return path


async def _step(page: Page, name: str) -> None:
    """Each page of the flow: no axe violation, and a screenshot for the artifacts."""
    assert await violations(page) == [], name
    await screenshot(page, f"flow {name}")


@pytest.mark.asyncio
async def test_an_organiser_runs_the_conference_from_the_browser(
    browser: Browser, site: str, tmp_path: Path
) -> None:
    page = await new_page(browser, 1280, "de")
    await page.goto(f"{site}/admin/login")
    await page.fill("#email", ORGANISER)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{site}/admin")

    # Create the sample conference by upload.
    await page.click("a[href='/admin/new']")
    await page.set_input_files("#f-file", str(SAMPLE_TOML))
    await page.click("form[action='/admin/new'] button[type=submit]")
    await page.wait_for_url(f"{site}/admin/{SLUG}?done=created")
    await _step(page, "1 overview after upload")

    # Import the invitees: the unknown column is named in the preview; nothing stored yet.
    await page.goto(f"{site}/admin/{SLUG}/people/import")
    await page.set_input_files("#f-file", str(invitees(tmp_path / "einladungsliste.csv")))
    async with page.expect_navigation():
        await page.click("form[enctype='multipart/form-data'] button[type=submit]")
    preview = await page.inner_text("main")
    assert "„Bemerkung“" in preview and "Forum Wunsch 1" in preview
    assert "Noch ist nichts gespeichert" in preview
    await _step(page, "2 import preview")
    async with page.expect_navigation():
        await page.click("form[action*='/people/import/'] button[type=submit]")
    await screenshot(page, "flow 2b after import")
    listed = await page.goto(f"{site}/admin/{SLUG}/people")
    assert listed is not None and listed.status == 200
    assert f"{PEOPLE}" in await page.inner_text("main")
    await _step(page, "3 people")

    # Run the balancer: preview first, then apply; people whose choices are full wait.
    await page.goto(f"{site}/admin/{SLUG}/forums")
    await page.check("#overflow-waitlist")
    async with page.expect_navigation():
        await page.click("form[action$='/forums/balance'] button[type=submit]")
    await _step(page, "4 balancer preview")
    await page.click("form[method=post][action$='/forums/balance'] button[type=submit]")
    await page.wait_for_url(f"{site}/admin/{SLUG}/forums**")
    await _step(page, "5 forums after the run")

    # Send the invitations and watch the bar reach the end, without reloading.
    await page.goto(f"{site}/admin/{SLUG}/mail")
    await page.click(f"form[action='/admin/{SLUG}/mail/send'] button[type=submit]")
    await page.wait_for_url(f"{site}/admin/{SLUG}/mail**")
    await page.wait_for_function(
        "() => { const bar = document.querySelector('#invite-progress progress');"
        " return bar && Number(bar.max) > 1 && Number(bar.value) === Number(bar.max); }",
        timeout=WAIT,
    )
    sent = int(await page.inner_text("[data-count=sent]"))
    assert sent >= PEOPLE  # everyone invited (plus the waiting-list notices)
    assert await page.inner_text("[data-count=failed]") == "0"
    await _step(page, "6 invitations sent")

    # Promote the first waitlisted person into the forum with the most free seats.
    await page.goto(f"{site}/admin/{SLUG}/forums")
    promote = page.locator("form.promote-form").first
    await promote.evaluate(
        "form => { const select = form.querySelector('select');"
        " const free = o => Number((o.textContent.match(/\\((\\d+)/) || [0, 0])[1]);"
        " const best = [...select.options].sort((a, b) => free(b) - free(a))[0];"
        " select.value = best.value; }"
    )
    waiting_before = await page.locator("form.promote-form").count()
    async with page.expect_navigation():
        await promote.locator("button[type=submit]").click()
    assert await page.locator("form.promote-form").count() == waiting_before - 1
    await _step(page, "7 forums after the promotion")

    # Excuse someone for a session, with a reason.
    await page.goto(f"{site}/admin/{SLUG}/attendance")
    await page.locator("a[href*='/attendance/entry/']").first.click()
    await page.locator("form[action$='/excuse'] input[name=reason]").fill("Krankmeldung")
    async with page.expect_navigation():
        await page.click("form[action$='/excuse'] button[type=submit]")
    assert "Krankmeldung" in await page.inner_text("main")
    await _step(page, "8 attendance entry excused")

    # Download the XLSX export.
    await page.goto(f"{site}/admin/{SLUG}/attendance")
    async with page.expect_download() as download_info:
        await page.click("a[href*='/attendance/export.xlsx']")
    download = await download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.suggested_filename
    await download.save_as(str(saved))
    workbook = openpyxl.load_workbook(saved, read_only=True)
    rows = sum(sheet.max_row or 0 for sheet in workbook.worksheets)
    assert rows > PEOPLE  # a row per person and session, plus headers and the summary
