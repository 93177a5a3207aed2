"""Search keys: name search that ignores case and accents, alike on SQLite and PostgreSQL.

SQLite's LOWER() and LIKE fold ASCII only, so the database cannot be asked to compare
"özdemir" with "Özdemir". Instead each person carries a key made here (`Person.search_key`),
and a query, folded the same way, is looked for in it with a plain LIKE.

Folding: Unicode case folding (ß → ss, İ → i̇), compatibility decomposition (NFKD) with the
combining marks dropped (é → e, Ş → s, й → и, Arabic vowel marks), a few letters that do not
decompose (ı ø ł đ æ œ …), apostrophes dropped (O'Connor = OConnor = O’Connor), dashes
unified. German umlauts fold both ways, so "muller" and "mueller" both find "Müller" and
"Mueller" is found by "Müller". Folding is done per character, so whatever is a substring
of a name stays a substring of its key.
"""

from __future__ import annotations

import re
import unicodedata

_FIELD_SEPARATOR = "\n"  # never in a folded query: whitespace is collapsed to single spaces

_TABLE = str.maketrans(
    {
        **dict.fromkeys("'’‘ʼʻ`´′", None),
        **dict.fromkeys("‐‑‒–—―−", "-"),
        "ı": "i",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "ħ": "h",
        "ŧ": "t",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
    }
)
_UMLAUT = re.compile("([aou])\u0308")  # ä ö ü after NFKD


def _strip(decomposed: str) -> str:
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(kept.translate(_TABLE).split())


def fold(text: str) -> tuple[str, ...]:
    """The folded forms of a text: plain ("muller"), and German ("mueller") if different."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_TABLE))
    plain = _strip(decomposed)
    if "\u0308" not in decomposed:
        return (plain,)
    german = _strip(_UMLAUT.sub(r"\1e", decomposed))
    return (plain,) if german == plain else (plain, german)


def search_key(
    first_name: str | None, last_name: str | None, email: str | None, organisation: str | None
) -> str:
    """The key a person is found by: the folded full name, email and organisation."""
    full_name = f"{first_name or ''} {last_name or ''}"
    forms = [form for text in (full_name, email or "", organisation or "") for form in fold(text)]
    return _FIELD_SEPARATOR.join(dict.fromkeys(form for form in forms if form))


def query_forms(query: str) -> list[str]:
    """The folded forms of what someone typed; empty when nothing searchable is left."""
    return [form for form in fold(query) if form]
