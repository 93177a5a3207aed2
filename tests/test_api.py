"""The JSON API over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import SAMPLE_TOML

pytestmark = pytest.mark.asyncio

ROOM = re.compile(r"^[a-z0-9-]+-[0-9a-f]{20}$")


async def _import_sample(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/conferences/import", files={"file": ("c.toml", SAMPLE_TOML.read_bytes())}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _add(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post("/api/v1/conferences/ik-heinsberg-2027/participants", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_staff_api_needs_the_bearer_key(api: httpx.AsyncClient) -> None:
    url = "/api/v1/conferences"
    assert (await api.get(url, headers={"Authorization": ""})).status_code == 401
    wrong = await api.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert (await api.get(url)).status_code == 200


async def test_healthz_and_openapi_are_public(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz", headers={"Authorization": ""})
    assert health.json()["database"] == "ok"
    spec = (await api.get("/openapi.json", headers={"Authorization": ""})).json()
    assert "/api/v1/conferences/{slug}/participants" in spec["paths"]


async def test_conference_import_lists_five_forums_with_rooms(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    again = await api.post(
        "/api/v1/conferences/import", files={"file": ("c.toml", SAMPLE_TOML.read_bytes())}
    )
    assert again.status_code == 200  # updated, not duplicated
    conferences = (await api.get("/api/v1/conferences")).json()
    assert [c["slug"] for c in conferences] == ["ik-heinsberg-2027"]
    forums = (await api.get("/api/v1/conferences/ik-heinsberg-2027/forums")).json()
    assert [f["key"] for f in forums] == [
        "sprache",
        "werte",
        "bildung",
        "arbeit",
        "bleibeperspektive",
    ]
    assert all(ROOM.match(f["room"]) for f in forums)
    assert len({f["room"] for f in forums}) == 5
    sessions = (await api.get("/api/v1/conferences/ik-heinsberg-2027/sessions")).json()
    assert sessions[0]["starts_at"] == "2027-03-18T09:30:00+01:00"


async def test_invalid_conference_names_the_field(api: httpx.AsyncClient) -> None:
    body = {
        "conference": {
            "slug": "x-2027",
            "title": "T",
            "date": "2027-01-01",
            "timezone": "Mars/Olympus",
        },
        "sessions": [
            {"key": "a", "kind": "plenary", "title": "A", "start": "10:00", "end": "09:00"}
        ],
    }
    response = await api.post("/api/v1/conferences", json=body)
    assert response.status_code == 422
    locations = [tuple(e["loc"]) for e in response.json()["detail"]]
    assert ("body", "conference", "timezone") in locations
    assert ("body", "sessions", 0) in locations
    assert (await api.get("/api/v1/conferences")).json() == []


async def test_unknown_conference_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/conferences/nope-2027/participants")
    assert response.status_code == 404
    assert "nope-2027" in response.json()["detail"]


async def test_participant_crud_paging_and_search(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    created = await _add(
        api,
        email="Noor.Haddad@Example.org",
        first_name="نور",
        last_name="الحسن",
        forum_choices=["arbeit", "sprache"],
    )
    assert created["email"] == "noor.haddad@example.org"
    assert created["personal_url"].startswith("http://orchestrator.test/p/")
    assert len(created["personal_url"].rsplit("/", 1)[1]) >= 43  # 256 bits, base64url
    assert created["forum"] is None
    for index in range(11):
        await _add(api, email=f"p{index:02d}@example.net", last_name=f"Zed{index:02d}")
    base = "/api/v1/conferences/ik-heinsberg-2027/participants"
    page = (await api.get(base, params={"limit": 5, "offset": 10})).json()
    assert page["total"] == 12 and len(page["items"]) == 2
    found = (await api.get(base, params={"q": "الحسن"})).json()
    assert [p["email"] for p in found["items"]] == ["noor.haddad@example.org"]
    patched = await api.patch(
        f"{base}/{created['id']}",
        json={"organisation": "VHS", "forum_choices": ["sprache", "arbeit"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["organisation"] == "VHS"
    assert patched.json()["forum_choices"] == ["sprache", "arbeit"]  # swapped ranks
    assert (await api.delete(f"{base}/{created['id']}")).status_code == 204
    assert (await api.get(f"{base}/{created['id']}")).status_code == 404


async def test_participant_errors(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    base = "/api/v1/conferences/ik-heinsberg-2027/participants"
    bad = await api.post(base, json={"email": "not-an-address"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "email"]
    crlf = await api.post(base, json={"email": "a@example.org", "last_name": "A\r\nBcc: x"})
    assert crlf.status_code == 422 and crlf.json()["detail"][0]["loc"] == ["body", "last_name"]
    unknown = await api.post(base, json={"email": "a@example.org", "forum_choices": ["mars"]})
    assert unknown.status_code == 422
    await _add(api, email="a@example.org")
    assert (await api.post(base, json={"email": "A@example.org"})).status_code == 409
    assert (await api.get(f"{base}/{uuid.uuid4()}")).status_code == 404
    assert (await api.get(f"{base}/1")).status_code == 422
    assert (await api.get(base)).json()["total"] == 1


async def test_participant_import_all_or_nothing(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    csv = (
        "email;first_name;last_name;forum_choice_1\n"
        "a@example.org;Anna;Müller;sprache\n"
        "kaputt;Bernd;B;sprache\n"
        "c@example.org;Chidi;C;mars\n"
    ).encode("utf-8-sig")
    url = "/api/v1/conferences/ik-heinsberg-2027/participants/import"
    rejected = await api.post(url, files={"file": ("people.csv", csv)})
    assert rejected.status_code == 422
    report = rejected.json()["report"]
    assert [e["row"] for e in report["errors"]] == [3, 4]
    participants = "/api/v1/conferences/ik-heinsberg-2027/participants"
    assert (await api.get(participants)).json()["total"] == 0
    partial = await api.post(
        url, files={"file": ("people.csv", csv)}, data={"skip_invalid": "true"}
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["created"] == 1 and partial.json()["skipped"] == 2
    assert (await api.get(participants)).json()["total"] == 1


async def test_assignment_run_and_override(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    people = [
        await _add(api, email=f"w{i}@example.org", forum_choices=["werte", "arbeit"])
        for i in range(3)
    ]
    report = (await api.post("/api/v1/conferences/ik-heinsberg-2027/assignments/run")).json()
    assert report["first_choice"] == 3
    target = f"/api/v1/conferences/ik-heinsberg-2027/participants/{people[0]['id']}/assignment"
    moved = await api.put(target, json={"forum": "bildung"})
    assert moved.status_code == 200 and moved.json()["forum"] == "bildung"
    assert moved.json()["assignment_source"] == "override"
    await api.post("/api/v1/conferences/ik-heinsberg-2027/assignments/run")
    listed = (
        await api.get(
            "/api/v1/conferences/ik-heinsberg-2027/participants", params={"forum": "bildung"}
        )
    ).json()
    assert [p["email"] for p in listed["items"]] == ["w0@example.org"]
    forums = (await api.get("/api/v1/conferences/ik-heinsberg-2027/forums")).json()
    assert {f["key"]: f["assigned"] for f in forums}["werte"] == 2


async def test_deleting_a_participant_erases_their_mail_too(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    person = await _add(api, email="weg@example.org", forum_choices=["sprache"])
    await api.post("/api/v1/conferences/ik-heinsberg-2027/assignments/run")
    sent = await api.post("/api/v1/conferences/ik-heinsberg-2027/invitations/send")
    assert sent.status_code == 200, sent.text
    before = (await api.get("/api/v1/conferences/ik-heinsberg-2027/outbox")).json()
    assert sum(before.values()) == 1
    url = f"/api/v1/conferences/ik-heinsberg-2027/participants/{person['id']}"
    assert (await api.delete(url)).status_code == 204
    after = (await api.get("/api/v1/conferences/ik-heinsberg-2027/outbox")).json()
    assert sum(after.values()) == 0


async def test_metrics_count_the_outbox_without_personal_data(api: httpx.AsyncClient) -> None:
    await _import_sample(api)
    await _add(api, email="metrik@example.org", forum_choices=["sprache"])
    await api.post("/api/v1/conferences/ik-heinsberg-2027/invitations/send")
    response = await api.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert 'orchestrator_outbox_messages{state="queued"} 1' in response.text
    assert "metrik@example.org" not in response.text
