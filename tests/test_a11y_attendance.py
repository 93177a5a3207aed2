"""Answers and attendance, one entry and the check-in page through axe-core in Chromium.

German and English, with the states a user meets: a refused filter, a refused form with its
error tied to the field, a message after an action, search results, a refused code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from orchestrator.attendance.checkin_codes import checkin_code, qr_png
from orchestrator.config import Settings
from tests.test_accessibility import CHECKIN_HELPER, SLUG, Page, _staff_login, page, site

__all__ = ["page", "site"]

AREA = f"/admin/{SLUG}/attendance"
CHECKIN = f"/admin/{SLUG}/checkin"


@pytest.mark.asyncio
async def test_attendance_pages_have_no_axe_violations(page: Page, site: tuple[str, Any]) -> None:
    base, (people, _rooms) = site
    entry = f"{AREA}/entry/{people['anna'].id}/opening"
    await _staff_login(page, base, AREA)
    urls = [
        AREA,
        f"{AREA}?session=forums&forum=sprache",
        f"{AREA}?session=no-such-session",  # the refused filter, tied to its field
        entry,
        f"{entry}?done=excused",
        f"{AREA}?done=missing",
        CHECKIN,
        f"{CHECKIN}?q=Muster",
    ]
    found = {}
    for url in urls:
        for lang in ("de", "en"):
            joined = "&" if "?" in url else "?"
            await page.open(f"{base}{url}{joined}lang={lang}")
            assert await page.evaluate("document.documentElement.lang") == lang
            found[f"{url} {lang}"] = await page.violations()
    await page.open(base + entry)
    await page.submit("document.querySelector('form[action$=\"/excuse\"]').submit();")
    assert await page.evaluate("document.getElementById('excuse-reason-error') !== null")
    found["refused excuse"] = await page.violations()
    await page.open(base + CHECKIN)
    await page.submit(
        "const form = document.getElementById('code-form');"
        "form.elements.code.value = 'OOOO 1111'; form.submit();"
    )
    assert "0, O, 1, I" in await page.evaluate("document.body.innerText")
    found["refused code"] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}


@pytest.mark.asyncio
async def test_check_in_staff_see_only_the_check_in(page: Page, site: tuple[str, Any]) -> None:
    base, _ = site
    await _staff_login(page, base, CHECKIN, CHECKIN_HELPER)
    found = {}
    for lang in ("de", "en"):
        await page.open(f"{base}{CHECKIN}?lang={lang}")
        links = await page.evaluate(
            "[...document.querySelectorAll('.section-nav a')].map(a => a.textContent)"
        )
        assert links == (["Einlass"] if lang == "de" else ["Check-in"])
        found[lang] = await page.violations()
        await page.open(f"{base}{AREA}?lang={lang}")
        assert await page.evaluate("document.title") != ""
        found[f"forbidden {lang}"] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}


@pytest.mark.asyncio
async def test_the_vendored_decoder_reads_our_qr_code(
    page: Page, site: tuple[str, Any], settings: Settings
) -> None:
    """Where the browser has no BarcodeDetector, checkin.js decodes frames with jsQR: it
    loads under the page's CSP and reads the QR code the personal page shows."""
    base, (people, _rooms) = site
    code = checkin_code(settings.require("secret_key"), people["anna"].id)
    png = base64.b64encode(qr_png(code)).decode()
    await _staff_login(page, base, CHECKIN)
    script = """new Promise((resolve, reject) => {
            const script = document.createElement('script');
            script.src = document.getElementById('scanner').dataset.decoder;
            script.onerror = reject;
            script.onload = async () => {
                const bytes = Uint8Array.from(atob(PNG), c => c.charCodeAt(0));
                const bitmap = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
                const canvas = document.createElement('canvas');
                canvas.width = bitmap.width; canvas.height = bitmap.height;
                const context = canvas.getContext('2d');
                context.drawImage(bitmap, 0, 0);
                const image = context.getImageData(0, 0, canvas.width, canvas.height);
                const found = window.jsQR(image.data, image.width, image.height);
                resolve(found ? found.data : null);
            };
            document.head.appendChild(script);
        })"""
    decoded = await page.evaluate(script.replace("PNG", json.dumps(png)))
    assert decoded == code
    assert await page.evaluate("!document.getElementById('scanner').hidden")  # camera offered
