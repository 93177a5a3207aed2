"""Playwright for Python driving Debian's Chromium (`executable_path`; no browser download).

Pages are checked with axe-core (from tests/a11y/node_modules, installed by `.ci/run`) and a
reflow check, in German and English, at 1280 px and 360 px; every checked page is saved as a
screenshot under ORCH_TEST_ARTIFACTS (default ./artifacts/screenshots) for CI to keep.
Without Chromium, Playwright or axe the tests skip, or fail where ORCH_TEST_REQUIRE_BROWSER
is set (as in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("ORCH_TEST_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
WIDTHS = (1280, 360)
LANGUAGES = ("de", "en")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

if os.environ.get("ORCH_TEST_REQUIRE_BROWSER") is None:
    playwright = pytest.importorskip("playwright.async_api")
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402


def _missing(reason: str) -> NoReturn:
    if os.environ.get("ORCH_TEST_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _missing("no chromium on PATH (Debian package chromium)")
    if not AXE.exists():
        _missing("no axe-core: npm ci --prefix tests/a11y")
    return found


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Browser, width: int = 1280, language: str = "de") -> Page:
    """A page in a fresh context (its own cookies) of this width, asking for this language."""
    context = await browser.new_context(
        viewport={"width": width, "height": 900},
        locale="de-DE" if language == "de" else "en-GB",
        extra_http_headers={"Accept-Language": language},
    )
    # Through the DevTools protocol, so the pages' own CSP (script-src 'self') stays in force.
    await context.add_init_script(path=str(AXE))
    return await context.new_page()


async def violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page, plus sideways scrolling (1.4.10)."""
    options = json.dumps({"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    result: dict[str, Any] = await page.evaluate(f"axe.run(document, {options})")
    found = [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in result["violations"]]
    wider = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if wider > 0:
        found.append(f"reflow: {wider}px wider than the screen")
    return found


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as artifacts/screenshots/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") + ".png")
    await page.screenshot(path=str(path), full_page=True)
    return path


async def check_everywhere(
    browser: Browser, base: str, paths: list[str], prepare: Any = None, label: str = ""
) -> dict[str, list[str]]:
    """Open each path in both languages at both widths; axe and reflow; screenshots.

    `prepare(page)` signs the page's fresh context in first, where the pages need it.
    """
    found: dict[str, list[str]] = {}
    for width in WIDTHS:
        for language in LANGUAGES:
            page = await new_page(browser, width, language)
            if prepare is not None:
                await prepare(page)
            for path in paths:
                await page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={language}")
                key = f"{label}{path} {language} {width}px"
                found[key] = await violations(page)
                await screenshot(page, key)
            await page.context.close()
    return {key: problems for key, problems in found.items() if problems}
