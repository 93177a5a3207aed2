"""A conference's time zone as people say it: "deutsche Zeit", not "Europe/Berlin"."""

from __future__ import annotations

from functools import lru_cache

from babel.dates import get_timezone_location

# Zones the county's conferences use, named as a German office writes them. Others fall back
# to the CLDR's "<country> time" wording in the reader's language.
SPOKEN = {
    "Europe/Berlin": {"de": "deutsche Zeit", "en": "German time"},
    "Europe/Vienna": {"de": "österreichische Zeit", "en": "Austrian time"},
    "Europe/Zurich": {"de": "Schweizer Zeit", "en": "Swiss time"},
    "Europe/Amsterdam": {"de": "niederländische Zeit", "en": "Dutch time"},
    "Europe/Brussels": {"de": "belgische Zeit", "en": "Belgian time"},
    "UTC": {"de": "Weltzeit (UTC)", "en": "Coordinated Universal Time (UTC)"},
}


@lru_cache(maxsize=64)
def zone_name(zone: str, language: str) -> str:
    """The zone in words for `language` (de or en)."""
    spoken = SPOKEN.get(zone, {}).get(language)
    if spoken:
        return spoken
    try:
        return str(get_timezone_location(zone, locale=language))
    except LookupError:
        return zone
