"""Every text the page templates mark for translation has its German translation.

English is the msgid; German, the default language, comes from the catalogue. A new text
without a German line would show English on a German page, so the test names each one.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from orchestrator.web.pages import LOCALE_DIR, TEMPLATES_DIR

OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def _msgids(template: Path) -> set[str]:
    with template.open("rb") as handle:
        found = babel_extract(handle, ("_", "gettext", "ngettext"), [], OPTIONS)
        return {
            text
            for _line, _function, message, _comments in found
            for text in (message if isinstance(message, tuple) else (message,))
            if text
        }


def test_every_page_text_has_a_german_translation() -> None:
    with (LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale="de")
    used = {(t.name, m) for t in sorted(TEMPLATES_DIR.rglob("*.html")) for m in _msgids(t)}
    assert len(used) > 100  # the extraction does find the texts
    missing = sorted(
        (name, m) for name, m in used if not (catalogue.get(m) and catalogue[m].string)
    )
    assert missing == []
