"""The invitations API over real HTTP: send once, report progress, refuse strangers."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.config import Settings
from orchestrator.web.app import create_app
from tests.conftest import API_KEY
from tests.invitation_helpers import conference_with_people
from tests.live import serve


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
