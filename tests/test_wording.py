"""German as a county office writes it: the organiser with its article, the zone in words,
one way of writing dates on every page."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences.wording import organiser_accusative, organiser_nominative
from orchestrator.mail.rendering import render
from orchestrator.timezones import zone_name
from orchestrator.web import pages
from tests.conftest import load_sample


@pytest.mark.parametrize(
    ("with_article", "nominative", "accusative"),
    [
        ("das Kommunale IZ", "Das Kommunale IZ", "das Kommunale IZ"),
        ("die Kreisverwaltung", "Die Kreisverwaltung", "die Kreisverwaltung"),
        ("der Landrat des Kreises", "Der Landrat des Kreises", "den Landrat des Kreises"),
    ],
)
def test_the_organiser_in_a_sentence(with_article: str, nominative: str, accusative: str) -> None:
    conference = {"organiser": "Heading", "organiser_with_article": with_article}
    assert organiser_nominative(conference) == nominative
    assert organiser_accusative(conference) == accusative


def test_without_an_article_the_plain_name_or_a_neutral_subject() -> None:
    assert organiser_accusative({"organiser": "KI Heinsberg"}) == "KI Heinsberg"
    assert organiser_nominative({"organiser": "KI Heinsberg"}) == "KI Heinsberg"
    assert organiser_nominative({}) == "Die Veranstalterin dieser Konferenz"


def test_zones_in_words() -> None:
    assert zone_name("Europe/Berlin", "de") == "deutsche Zeit"
    assert zone_name("Europe/Berlin", "en") == "German time"
    assert "Frankreich" in zone_name("Europe/Paris", "de")
    assert zone_name("Not/AZone", "en") == "Not/AZone"


def test_pages_write_dates_as_the_personal_page_does() -> None:
    day = date(2027, 3, 18)
    assert pages._long_date(day, "de") == "Do., 18. März 2027"
    assert pages._long_date(day, "en") == "Thu, 18 March 2027"


@pytest.mark.asyncio
async def test_the_sample_conference_speaks_of_its_organiser_with_the_article(
    session: AsyncSession,
) -> None:
    conference = await load_sample(session)
    assert conference.organiser_with_article == "das Kommunale Integrationszentrum Kreis Heinsberg"
    context = {
        "name": "Anna Muster",
        "conference": conference,
        "timezone": conference.timezone,
        "personal_url": "https://example.org/p/x",
        "agenda": [],
        "cancelled": [],
    }
    text = render("invitation", "de", context).text
    assert "Das Kommunale Integrationszentrum Kreis Heinsberg verarbeitet Ihren Namen" in text
    assert "Guten Tag Anna Muster,\n\nwir laden Sie herzlich" in text
    english = render("invitation", "en", context).text
    assert "Hello Anna Muster,\n\nWe warmly invite you" in english
