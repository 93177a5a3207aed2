"""The invitations API over real HTTP: send once, report progress, refuse strangers."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.clock import FrozenClock
from orchestrator.config import Settings
from orchestrator.mail.addresses import NO_SMTPUTF8
from orchestrator.mail.sender import OutboxSender
from orchestrator.mail.smtp import SmtpTransport
from orchestrator.web.app import create_app
from tests.conftest import API_KEY
from tests.invitation_helpers import NOW, conference_with_people
from tests.live import serve
from tests.smtp_server import FROM, Sessions, SmtpServer

GUELSEN = "gülşen.çelik@example.org"


@pytest.mark.asyncio
async def test_api_sends_once_and_reports_progress(
    session: AsyncSession, settings: Settings
) -> None:
    conference = await conference_with_people(session)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client,
    ):
        url = f"/api/v1/conferences/{conference.slug}/invitations"
        first = await client.post(f"{url}/send")
        assert first.status_code == 200, first.text
        body, again = first.json(), (await client.post(f"{url}/send")).json()
        assert (body["invitations"]["queued"], body["changes"]["queued"]) == (4, 0)
        assert (again["invitations"]["queued"], again["outbox"]["queued"]) == (0, 4)
        progress = (await client.get(url, params={"kind": "invitation"})).json()
        assert progress["outbox"]["queued"] == 4 and progress["total"] == 4
        assert (await client.get(url, params={"kind": "nonsense"})).status_code == 422
        assert (await client.post("/api/v1/conferences/no/invitations/send")).status_code == 404
        async with httpx.AsyncClient(base_url=base_url) as anonymous:
            assert (await anonymous.get(url)).status_code == 401


@pytest.mark.asyncio
async def test_an_address_the_relay_cannot_take_shows_as_failed_with_its_reason(
    session: AsyncSession, sessions: Sessions, settings: Settings
) -> None:
    conference = await conference_with_people(session)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    relay = SmtpServer(enable_SMTPUTF8=False)  # aiosmtpd's Controller offers it by default
    relay.up()
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client,
    ):
        people = f"/api/v1/conferences/{conference.slug}/participants"
        for bad in ("gülşen@@example.org", "gülşen.çelik@example..org", "g@example.org\r\nBcc: x"):
            refused = await client.post(people, json={"email": bad})
            assert refused.status_code == 422, bad
            assert refused.json()["detail"][0]["loc"] == ["body", "email"]
        added = await client.post(people, json={"email": GUELSEN, "first_name": "Gülşen"})
        assert added.status_code == 201, added.text
        url = f"/api/v1/conferences/{conference.slug}/invitations"
        sent = (await client.post(f"{url}/send")).json()
        assert (sent["invitations"]["queued"], sent["invitations"]["failed"]) == (5, [])
        transport = SmtpTransport(relay.settings(settings))
        sender = OutboxSender(sessions, transport, FROM, clock=FrozenClock(NOW))
        try:
            while await sender.run_once():
                pass
        finally:
            await transport.close()
            relay.down()
        progress = (await client.get(url)).json()
    assert progress["outbox"] | {"sent": 4, "failed": 1} == progress["outbox"]
    assert progress["total"] == 5
    assert progress["failures"] == [{"reason": NO_SMTPUTF8, "count": 1}]
