"""The pages of invitations and mail (/admin/{slug}/mail) through axe-core in Chromium, in
German and English, on a phone-sized screen: the area with a failed mail listed, its flash
messages, the preview (with its sandboxed frame) and the outbox list; and the test
mailbox's message page, which now frames the HTML part too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.config import Settings
from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.mail.outbox import Outgoing, enqueue_many
from orchestrator.mail.rendering import Rendered, build_message, mailbox
from tests.smtp_server import FROM
from tests.test_accessibility import SLUG, Page, _staff_login, page, site
from tests.test_admin_mail import deliver, invitation

__all__ = ["page", "site"]

AREA = f"/admin/{SLUG}/mail"


async def _failed_mail(session: AsyncSession) -> None:
    """A mail of the conference the server refused, with its reason."""
    rendered = Rendered(subject="Einladung", text="Text\n", html="<p>HTML</p>")
    message = build_message(
        rendered,
        sender=FROM,
        recipient=mailbox("Unbekannt", "unknown@example.org"),
        calendar=None,
        method=None,
        language="de",
    )
    from orchestrator.conferences import repository

    conference = await repository.get_by_slug(session, SLUG)
    item = Outgoing("invitation", "a11y:1", "unknown@example.org", message, conference.id)
    await enqueue_many(session, [item], message_domain="kreis.example")
    failed = {"state": OutboxState.FAILED, "attempts": 1, "last_error": "550 5.1.1 User unknown"}
    await session.execute(update(OutboxMessage).values(**failed))
    await session.commit()


@pytest.mark.asyncio
async def test_mail_area_pages_have_no_axe_violations(
    page: Page, site: tuple[str, Any], session: AsyncSession, settings: Settings
) -> None:
    base, _ = site
    await _failed_mail(session)
    [name] = await deliver(settings, invitation(1, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    await _staff_login(page, base, AREA)
    urls = [
        AREA,
        f"{AREA}?status=started",
        f"{AREA}?status=whom",
        f"{AREA}?status=requeued&count=1",
        f"{AREA}/preview",
        f"{AREA}/preview?kind=reminder&language=en&email=anna@example.org",
        f"{AREA}/preview?kind=invitation&email=nobody@example.org",
        f"{AREA}/outbox",
        f"{AREA}/outbox?state=failed",
        f"/admin/mail/{name}",
    ]
    found = {}
    for url in urls:
        for query in ("", "lang=en"):
            joined = url + (("&" if "?" in url else "?") + query if query else "")
            await page.open(base + joined)
            wanted = "en" if query else "de"
            assert await page.evaluate("document.documentElement.lang") == wanted, joined
            found[joined] = await page.violations()
    await page.open(base + AREA)
    shown = await page.evaluate("document.getElementById('failed').innerText")
    assert "550 5.1.1 User unknown" in shown
    # The script ran under the page's CSP (it hides the no-JS reload link and streams).
    assert await page.evaluate("document.querySelector('.reload-link').hidden") is True
    await page.send("Log.enable")
    await page.open(f"{base}{AREA}/preview?kind=invitation")
    await page.evaluate("new Promise(done => setTimeout(done, 300))")
    logged = [e for e in page.events if e.get("method") == "Log.entryAdded"]
    refused = [e for e in logged if "Content Security Policy" in str(e)]
    assert refused == []  # the frame is allowed in, and nothing in it was blocked
    assert {url: v for url, v in found.items() if v} == {}
