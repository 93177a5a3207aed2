"""Reminder offsets as an organiser writes them ("7 Tage, 1 Tag, 15 Minuten") and as ISO 8601
durations the record keeps ("P7D", "P1D", "PT15M"), both ways."""

from __future__ import annotations

import re

from orchestrator.errors import InvalidInputError

_UNITS = {  # word (singular and plural, de and en) -> ISO designator and whether it is a time
    "tag": ("D", False), "tage": ("D", False), "tagen": ("D", False),
    "day": ("D", False), "days": ("D", False),
    "woche": ("W", False), "wochen": ("W", False), "week": ("W", False), "weeks": ("W", False),
    "stunde": ("H", True), "stunden": ("H", True), "hour": ("H", True), "hours": ("H", True),
    "minute": ("M", True), "minuten": ("M", True), "minutes": ("M", True),
    "min": ("M", True),
}  # fmt: skip
_PART = re.compile(r"^\s*(\d{1,4})\s*([A-Za-zäöüÄÖÜ]+)\.?\s*$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")
_WORDS = {
    "de": {"W": ("Woche", "Wochen"), "D": ("Tag", "Tage"), "H": ("Stunde", "Stunden"),
           "M": ("Minute", "Minuten")},
    "en": {"W": ("week", "weeks"), "D": ("day", "days"), "H": ("hour", "hours"),
           "M": ("minute", "minutes")},
}  # fmt: skip


def _refused(part: str) -> InvalidInputError:
    return InvalidInputError(
        f"„{part.strip()[:40]}“ ist keine Zeitangabe; bitte z. B. „7 Tage, 1 Tag, 15 Minuten“. "
        f"/ “{part.strip()[:40]}” is not a duration; for example “7 days, 1 day, 15 minutes”.",
        details={"field": "reminders"},
    )


def parse_offsets(text: str) -> list[str]:
    """'7 Tage, 1 Tag, 15 Minuten' (or ISO 8601 such as P7D) as ISO 8601 durations."""
    offsets: list[str] = []
    for part in re.split(r"[,;\n]", text):
        if not part.strip():
            continue
        iso = part.strip().upper()
        if _ISO.match(iso) and iso != "P" and not iso.endswith("T"):
            offsets.append(iso)
            continue
        found = _PART.match(part)
        unit = _UNITS.get(found.group(2).lower()) if found else None
        if found is None or unit is None or int(found.group(1)) == 0:
            raise _refused(part)
        letter, is_time = unit
        offsets.append(f"PT{found.group(1)}{letter}" if is_time else f"P{found.group(1)}{letter}")
    return offsets


def describe(offsets: list[str], language: str) -> str:
    """The offsets in words, for the form: 'P7D' -> '7 Tage'."""
    words = _WORDS["de" if language == "de" else "en"]
    parts = []
    for offset in offsets:
        found = _ISO.match(offset)
        if not found:
            parts.append(offset)
            continue
        for letter, value in zip("WDHM", found.groups(), strict=True):
            if value:
                singular, plural = words[letter]
                parts.append(f"{int(value)} {singular if int(value) == 1 else plural}")
    return ", ".join(parts)
