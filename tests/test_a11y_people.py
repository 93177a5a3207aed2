"""axe-core (WCAG 2.1 AA) and reflow at 390 px on the people area's pages, German and English:
the list (plain and filtered), a person's page, the add form with errors, the removal
question, the import form and an import preview with an unknown column and bad rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_accessibility import Page, _staff_login, page, site
from tests.test_accessibility import pytestmark as browser_backends

pytestmark = browser_backends
SLUG = "ik-heinsberg-2027"
PEOPLE = f"/admin/{SLUG}/people"
CSV = (
    "E-Mail;Vorname;Nachname;Forum Wunsch 1;Lieblingsfarbe\n"
    "lea@example.org;Lea;Kaya;sprache;blau\n"
    "kaputt;Tom;Ries;sprache;grün\n"
    "ali@example.org;Ali;Demir;nosuchforum;rot\n"
)
__all__ = ["page", "site"]  # the fixtures this module uses


async def _submit_person_with_errors(tab: Page, base: str, query: str) -> None:
    await tab.open(f"{base}{PEOPLE}/new{query}")
    await tab.submit(
        f"document.querySelector('form.admin-form').action += {json.dumps(query)};"
        "document.getElementById('f-email').value = 'not-an-address';"
        "document.getElementById('f-first_name').value = 'Eva';"
        "document.getElementById('f-forum_choice_1').value = 'werte';"
        "document.getElementById('f-forum_choice_2').value = 'werte';"
        "document.querySelector('form.admin-form').submit();"
    )


async def _upload(tab: Page, base: str, query: str) -> None:
    """Choose a file in the import form (as a person would), send it, see its preview."""
    await tab.open(f"{base}{PEOPLE}/import{query}")
    await tab.submit(
        "const data = new DataTransfer();"
        f"data.items.add(new File([{json.dumps(CSV)}], 'Liste.csv', {{type: 'text/csv'}}));"
        "document.getElementById('f-file').files = data.files;"
        "document.querySelector('form.admin-form').submit();"
    )
    preview = await tab.evaluate("location.pathname")
    assert "/import/" in preview
    await tab.open(f"{base}{preview}{query}")


@pytest.mark.asyncio
async def test_people_pages_have_no_axe_violations(page: Page, site: tuple[str, Any]) -> None:
    base, (people, _rooms) = site
    anna = people["anna"]
    await _staff_login(page, base, PEOPLE)
    await page.open(f"{base}{PEOPLE}/{anna.id}")  # resend: the page then lists a mail
    await page.submit("document.querySelector('form[action$=\"/resend\"]').submit();")
    assert await page.evaluate("document.getElementById('mail-caption') !== null")
    assert await page.evaluate("document.getElementById('calendar-caption') !== null")
    found: dict[str, list[str]] = {}
    for query, language in (("?lang=de", "de"), ("?lang=en", "en")):
        urls = [
            PEOPLE + query,
            f"{PEOPLE}{query}&q=muster&forum=sprache&rsvp=needs_action&consent=no&waiting=1",
            f"{PEOPLE}{query}&q=nobody",
            f"{PEOPLE}/{anna.id}{query}",
            f"{PEOPLE}/{anna.id}{query}&done=saved",
            f"{PEOPLE}/{anna.id}/edit{query}",
            f"{PEOPLE}/{anna.id}/remove{query}",
            f"{PEOPLE}/import{query}",
        ]
        for url in urls:
            await page.open(base + url)
            assert await page.evaluate("document.documentElement.lang") == language
            found[url] = await page.violations()
        await _submit_person_with_errors(page, base, query)
        assert await page.evaluate("document.getElementById('form-problems') !== null")
        described = "document.getElementById('f-email').getAttribute('aria-describedby')"
        assert await page.evaluate(described) == "f-email-error"
        found["add with errors" + query] = await page.violations()
        await _upload(page, base, query)
        text = await page.evaluate("document.body.innerText")
        assert "Lieblingsfarbe" in text
        found["import preview" + query] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}
