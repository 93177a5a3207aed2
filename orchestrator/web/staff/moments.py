"""Times on staff pages: always with their date, in the conference's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date


def moment_formatter(language: str, timezone: str) -> Callable[[datetime | None], str]:
    """A callable for templates: `18.03.2027, 09:12` (de) or `Mar 18, 2027, 09:12` (en)."""
    zone = ZoneInfo(timezone)

    def show(moment: datetime | None) -> str:
        if moment is None:
            return ""
        local = moment.astimezone(zone)
        return f"{format_date(local, format='medium', locale=language)}, {local:%H:%M}"

    return show
