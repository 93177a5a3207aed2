"""Creating a conference by upload and changing its settings in the browser, over HTTP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts.models import StaffRole
from orchestrator.conferences import durations, repository
from orchestrator.errors import InvalidInputError
from tests.conftest import SAMPLE_TOML, load_sample
from tests.staff_helpers import add_staff
from tests.test_staff_login import SLUG, Staff, csrf_of
from tests.test_staff_login import live as live

SETTINGS = f"/admin/{SLUG}/settings"


def test_reminder_offsets_in_words_both_ways() -> None:
    assert durations.parse_offsets("7 Tage, 1 Tag, 15 Minuten") == ["P7D", "P1D", "PT15M"]
    assert durations.parse_offsets("2 hours; P3D\n1 Woche") == ["PT2H", "P3D", "P1W"]
    assert durations.describe(["P7D", "P1D", "PT15M"], "de") == "7 Tage, 1 Tag, 15 Minuten"
    assert durations.describe(["PT1H"], "en") == "1 hour"
    for wrong in ("7 Jahre", "sieben Tage", "0 Minuten", "P", "PT"):
        with pytest.raises(InvalidInputError):
            durations.parse_offsets(wrong)


async def _upload(live: Staff, csrf: str, content: bytes) -> httpx.Response:
    files = {"file": ("konferenz.toml", content, "application/toml")}
    return await live.client.post("/admin/new", data={"csrf_token": csrf}, files=files)


@pytest.mark.asyncio
async def test_an_organiser_creates_a_conference_by_upload(
    live: Staff, session: AsyncSession
) -> None:
    csrf = await live.signed_in()
    assert (await live.client.get("/admin/new")).status_code == 200
    created = await _upload(live, csrf, SAMPLE_TOML.read_bytes())
    assert created.status_code == 303
    assert created.headers["location"] == f"/admin/{SLUG}?done=created"
    conference = await repository.get_by_slug(session, SLUG)
    assert len(conference.forums) == 5
    broken = await _upload(live, csrf, b'[conference]\nslug = "x"\ntitle = ')
    assert broken.status_code == 422
    assert "kein gültiges TOML" in broken.text
    wrong = await _upload(live, csrf, SAMPLE_TOML.read_bytes().replace(b"09:30", b"25:30"))
    assert wrong.status_code == 422 and "konferenz.toml" in wrong.text


@pytest.mark.asyncio
async def test_an_organiser_of_one_conference_cannot_take_over_anothers_slug(
    live: Staff, session: AsyncSession
) -> None:
    await load_sample(session)
    await add_staff(session, "neu@example.org", StaffRole.ORGANISER, conference=SLUG)
    other = SAMPLE_TOML.read_bytes().replace(b"ik-heinsberg-2027", b"ik-heinsberg-2028")
    await add_staff(session, "fremd@example.org", StaffRole.ORGANISER, conference=SLUG)
    csrf = await live.signed_in("neu@example.org")
    made = await _upload(live, csrf, other)
    assert made.status_code == 303
    page = await live.client.get("/admin/ik-heinsberg-2028")
    assert page.status_code == 200  # the creator organises what they created
    csrf = await live.signed_in("fremd@example.org")
    taken = await _upload(live, csrf, other)
    assert taken.status_code == 422 and "schon vergeben" in taken.text
    helper = "einlass@example.org"
    await add_staff(session, helper, StaffRole.CHECKIN, conference=SLUG)
    await live.signed_in(helper)
    assert (await live.client.get("/admin/new")).status_code == 403


@pytest.mark.asyncio
async def test_settings_are_saved_and_bad_fields_named(live: Staff, session: AsyncSession) -> None:
    await load_sample(session)
    await live.signed_in()
    form = await live.client.get(SETTINGS)
    assert 'value="7 Tage, 1 Tag, 15 Minuten"' in form.text
    data = {
        "csrf_token": csrf_of(form.text),
        "title": "Integrationskonferenz 2027",
        "lead_theme": "Arbeit",
        "organiser": "Kommunales Integrationszentrum",
        "organiser_with_article": "das Kommunale Integrationszentrum",
        "organiser_email": "ki@example.org",
        "venue": "Kreishaus",
        "mode": "hybrid",
        "reminders": "3 Tage, 30 Minuten",
        "retention_days": "180",
    }
    saved = await live.client.post(SETTINGS, data=data)
    assert saved.status_code == 303 and saved.headers["location"] == f"{SETTINGS}?done=saved"
    session.expire_all()
    conference = await repository.get_by_slug(session, SLUG)
    assert conference.reminder_offsets == ["P3D", "PT30M"]
    assert (conference.title, conference.retention_days) == ("Integrationskonferenz 2027", 180)
    for field, value in (
        ("reminders", "7 Jahre"),
        ("title", ""),
        ("retention_days", "nie"),
        ("organiser_email", "keine-adresse"),
        ("mode", "zirkus"),
    ):
        refused = await live.client.post(SETTINGS, data={**data, field: value})
        assert refused.status_code == 422, field
        assert f'id="f-{field}-error"' in refused.text, field
    session.expire_all()
    unchanged = await repository.get_by_slug(session, SLUG)
    assert unchanged.reminder_offsets == ["P3D", "PT30M"]  # nothing half-saved


@pytest.mark.asyncio
async def test_a_slug_that_names_a_staff_page_is_refused(live: Staff) -> None:
    csrf = await live.signed_in()
    for word in ("mail", "new", "account"):
        content = SAMPLE_TOML.read_bytes().replace(b"ik-heinsberg-2027", word.encode())
        refused = await _upload(live, csrf, content)
        assert refused.status_code == 422 and "reserviert" in refused.text, word
