"""The columns of a participant list: which headers mean which field, which cell values mean
which value. Headers and values are compared after `norm` (lower case, letters and digits).
"""

from __future__ import annotations

from orchestrator.participants.schemas import MAX_CHOICES

_ORDINALS = ("erst", "zweit", "dritt", "viert", "fünft")[:MAX_CHOICES]
FORUM_COLUMNS = tuple(f"forum_choice_{n}" for n in range(1, len(_ORDINALS) + 1))


def _forum_aliases(n: int, ordinal: str) -> str:
    """ "Forum 1", "Wunsch 1", "Erstwunsch", "Forum Wunsch 1", "1. Wunsch", "Wahl 1", …"""
    forms = (
        "forumchoice{n} forum{n} wunsch{n} {o}wunsch forumwunsch{n} wunschforum{n} {n}wunsch"
        " {n}forumwunsch {n}forum forum{n}wunsch {o}wunschforum forumwahl{n} wahl{n} {n}wahl"
        " {o}wahl choice{n} {n}choice"
    )
    return forms.format(n=n, o=ordinal)


# Canonical column: its German label and its header names after norm (letters and digits).
_COLUMNS: dict[str, tuple[str, str]] = {
    "email": ("E-Mail-Adresse", "email mail emailadresse emailaddress mailadresse"),
    "first_name": ("Vorname", "firstname vorname givenname"),
    "last_name": ("Nachname", "lastname nachname name familienname surname"),
    "organisation": ("Organisation", "organisation organization institution einrichtung"),
    "role": ("Rolle", "role rolle"),
    "attendance_mode": ("Teilnahmeform", "attendancemode teilnahmeform teilnahme teilnahmeart"),
    "language": ("Sprache", "language sprache"),
    "consent": ("Einwilligung", "consent einwilligung"),
    **{
        f"forum_choice_{n}": (f"Forum {n}", _forum_aliases(n, ordinal))
        for n, ordinal in enumerate(_ORDINALS, 1)
    },
}
LABELS = {column: label for column, (label, _) in _COLUMNS.items()}
HEADER_ALIASES = {
    alias: column for column, (_, aliases) in _COLUMNS.items() for alias in aliases.split()
}

# Cell values after norm -> the value PersonIn expects; other values go to PersonIn as is.
_VALUES: dict[str, dict[str, str]] = {
    "role": {
        "participant": "participant teilnehmer teilnehmerin teilnehmende teilnehmender",
        "moderator": "moderator moderatorin moderation",
        "referent": "referent referentin speaker",
        "organiser": "organiser organizer organisator organisatorin",
    },
    "attendance_mode": {
        "undecided": "undecided offen unentschieden",
        "in_person": "inperson präsenz praesenz vorort",
        "online": "online video",
    },
    "language": {"de": "de deutsch german", "en": "en englisch english"},
    "consent": {"false": "nein no 0 false falsch", "true": "ja yes 1 true x wahr"},
}
VALUE_ALIASES = {
    column: {alias: value for value, aliases in table.items() for alias in aliases.split()}
    for column, table in _VALUES.items()
}
# An empty cell means the first value of the column's table.
EMPTY_VALUES = {column: next(iter(table)) for column, table in _VALUES.items()}


def norm(text: str) -> str:
    """A header or cell as compared: lower case, letters and digits only."""
    return "".join(char for char in text.lower() if char.isalnum())


def column_of(header: str) -> str | None:
    """The canonical column a header names, or None when it is not recognised."""
    return HEADER_ALIASES.get(norm(header))
