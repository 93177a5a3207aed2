"""Synthetic, realistic invitees for the demo conference (addresses under example.org/.net).

Same columns as shared/data/make_participants.py; the same seed gives the same people.
"""

from __future__ import annotations

import random
import unicodedata

COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "organisation",
    "role",
    "attendance_mode",
    "language",
    "forum_choice_1",
    "forum_choice_2",
)

FIRST_NAMES = (
    "Anna",
    "Jürgen",
    "Małgorzata",
    "Mehmet",
    "Ayşe",
    "Fatima",
    "Olena",
    "Mykola",
    "Ahmad",
    "Noor",
    "Sören",
    "Łukasz",
    "Zeynep",
    "Dragan",
    "Marie-Luise",
    "Jean-Pierre",
    "Siobhán",
    "Chidi",
    "Amina",
    "Hüseyin",
    "Wolfgang",
    "Gülşen",
    "Björn",
    "Iryna",
    "Yusuf",
    "Kateryna",
    "Heike",
    "Rüdiger",
    "Aleksandra",
    "Tareq",
    "Leonie",
    "Ömer",
    "Nadia",
    "Dženan",
    "Stefan",
    "Klaus",
    "Ebru",
    "Oksana",
    "Samir",
    "Ingrid",
)
LAST_NAMES = (
    "Müller",
    "Schmitz",
    "Öztürk",
    "Kowalczyk",
    "Al-Hassan",
    "Shevchenko",
    "Yılmaz",
    "Hoffmann",
    "Becker",
    "Nowak",
    "Haddad",
    "Bondarenko",
    "van den Berg",
    "Krämer",
    "Demir",
    "Petrović",
    "O'Connor",
    "Wagner",
    "Abdullahi",
    "Jansen",
    "Lenz",
    "Çelik",
    "Meier-Gräfe",
    "Kuznetsova",
    "Rahimi",
    "Schulte",
    "Iwanowa",
    "Begić",
    "Thelen",
    "Nguyen",
)
ORGANISATIONS = (
    "Kreisverwaltung Heinsberg – Kommunales Integrationszentrum",
    "Kreisverwaltung Heinsberg – Ausländerbehörde",
    "Kreisverwaltung Heinsberg – Sozialamt",
    "Schulamt für den Kreis Heinsberg",
    "Jobcenter Kreis Heinsberg",
    "Agentur für Arbeit Aachen-Düren, Geschäftsstelle Heinsberg",
    "Stadt Heinsberg",
    "Stadt Erkelenz",
    "Stadt Geilenkirchen",
    "Stadt Hückelhoven",
    "Stadt Übach-Palenberg",
    "Stadt Wassenberg",
    "Stadt Wegberg",
    "Gemeinde Gangelt",
    "Gemeinde Selfkant",
    "Gemeinde Waldfeucht",
    "Wirtschaftsförderungsgesellschaft für den Kreis Heinsberg",
    "Kreishandwerkerschaft Heinsberg",
    "Wirtschaftsbeirat",
    "Kreissportbund Heinsberg",
    "Caritasverband für die Region Heinsberg",
    "Diakonisches Werk",
    "DRK-Kreisverband",
    "AWO-Kreisverband",
    "Katholische Kirchengemeinde St. Gangolf",
    "Evangelische Kirchengemeinde",
    "Islamische Gemeinde",
    "Flüchtlingshilfe Erkelenz e.V.",
    "Integrationsstützpunktverein SV 09",
    "Volkshochschule",
    "Sprachcafé Hückelhoven (Ehrenamt)",
    "Handwerksbetrieb Jansen GmbH",
    "Pflegedienst Lenz",
    "privat",
)
ROLES = ("participant",) * 18 + ("moderator", "referent")
MODES = ("online",) * 5 + ("in_person",) * 4 + ("undecided",)
LANGUAGES = ("de",) * 8 + ("en",) * 2
DOMAINS = ("example.org", "example.net", "verwaltung.example.org")


def _ascii(text: str) -> str:
    text = text.replace("ß", "ss").replace("ł", "l").replace("Ł", "L")
    kept = "".join(c for c in unicodedata.normalize("NFKD", text) if c.isalnum() and c.isascii())
    return kept.lower() or "x"


def generate(count: int, forum_keys: list[str], seed: int = 1) -> list[dict[str, str]]:
    """`count` invitee rows, each with two distinct ranked forum choices."""
    rnd = random.Random(seed)  # noqa: S311 - synthetic demo data, not security
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for index in range(count):
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        local = f"{_ascii(first)}.{_ascii(last)}"
        if local in seen:
            local = f"{local}{index}"
        seen.add(local)
        first_choice, second_choice = rnd.sample(forum_keys, 2)
        rows.append(
            {
                "email": f"{local}@{rnd.choice(DOMAINS)}",
                "first_name": first,
                "last_name": last,
                "organisation": rnd.choice(ORGANISATIONS),
                "role": rnd.choice(ROLES),
                "attendance_mode": rnd.choice(MODES),
                "language": rnd.choice(LANGUAGES),
                "forum_choice_1": first_choice,
                "forum_choice_2": second_choice,
            }
        )
    return rows
