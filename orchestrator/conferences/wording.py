"""The organiser's name as German sentences need it.

`organiser` is the name as a heading writes it ("Kommunales Integrationszentrum Kreis
Heinsberg"); `organiser_with_article` the name in a sentence, nominative with its article
("das Kommunale Integrationszentrum Kreis Heinsberg"). Both functions take a Conference or
the mapping a mail's context holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FALLBACK_SUBJECT = "Die Veranstalterin dieser Konferenz"


def _field(conference: Any, name: str) -> str:
    if isinstance(conference, Mapping):
        return str(conference.get(name) or "")
    return str(getattr(conference, name, "") or "")


def organiser_nominative(conference: Any) -> str:
    """Subject of a sentence, capitalised: "Das Kommunale Integrationszentrum ..."."""
    phrase = _field(conference, "organiser_with_article") or _field(conference, "organiser")
    return phrase[:1].upper() + phrase[1:] if phrase else FALLBACK_SUBJECT


def organiser_accusative(conference: Any) -> str:
    """After "an": "das ..." and "die ..." stay, "der ..." becomes "den ..."."""
    phrase = _field(conference, "organiser_with_article")
    if not phrase:
        return _field(conference, "organiser")
    if phrase.lower().startswith("der "):
        return "den " + phrase[4:]
    return phrase[:1].lower() + phrase[1:]
