"""Server-rendered pages: Jinja2 (autoescape on) with gettext catalogues, German first.

The catalogues are `orchestrator/locale/{de,en}/LC_MESSAGES/messages.po`, compiled in memory
when a language is first used (no binary .mo files in the repository). msgids are English.
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from orchestrator.timezones import zone_name

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
LOCALE_DIR = WEB_DIR.parent / "locale"

# Personal pages and join redirects carry the person's token (and the redirect a JWT) in
# the URL: never cache them, never send them on as a Referer.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {
    **PRIVATE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


def load_translations(language: str) -> gettext.GNUTranslations:
    """Compile a language's .po catalogue in memory."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> Environment:
    """The Jinja2 environment of one language (each has its own gettext and filters)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(load_translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = language
    env.filters["long_date"] = lambda day: _long_date(day, language)
    env.filters["zone_name"] = lambda zone: zone_name(zone, language)
    env.filters["clock"] = lambda moment: moment.strftime("%H:%M")
    return env


# One way of writing a date on every page, as the personal page does ("Do., 18. März 2027",
# "Thu, 18 March 2027"), whatever Babel's locale default for "long" would be.
DATE_PATTERNS = {"de": "EEE, d. MMMM y", "en": "EEE, d MMMM y"}


def _long_date(day: date | datetime, language: str) -> str:
    return format_date(day, format=DATE_PATTERNS[language], locale=language)


@lru_cache(maxsize=len(LANGUAGES))
def _catalogue(language: str) -> gettext.GNUTranslations:
    return load_translations(language)


def translate(text: str, language: str) -> str:
    """One text in a language, for the few strings that Python rather than a template puts
    on a page."""
    return _catalogue(language).gettext(text)


def load_all() -> None:
    """Compile every catalogue now (at startup) rather than on the first page."""
    for language in LANGUAGES:
        environment(language)


def render(name: str, language: str, /, **context: object) -> str:
    """Render a template in a language (German when the language is not offered)."""
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    return environment(language).get_template(name).render(**context)


def page(name: str, language: str, status_code: int = 200, /, **context: object) -> HTMLResponse:
    """An HTML answer that is never cached and never leaks its URL as a Referer."""
    return HTMLResponse(
        render(name, language, **context), status_code=status_code, headers=PAGE_HEADERS
    )


def _weighted(part: str) -> tuple[float, str]:
    tag, _, params = part.strip().partition(";")
    weight = 1.0
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
    return weight, tag.strip().lower().split("-")[0]


def from_accept_language(header: str) -> str | None:
    """The offered language the browser likes best, or None."""
    parts = [_weighted(part) for part in header.split(",") if part.strip()]
    ranked = sorted(parts, key=lambda item: -item[0])  # stable: ties keep the header's order
    return next((tag for weight, tag in ranked if weight > 0 and tag in LANGUAGES), None)


def pick_language(request: Request, known: str | None = None) -> str:
    """The person's language if known, else ?lang=, else Accept-Language, else German."""
    if known in LANGUAGES:
        return str(known)
    asked = request.query_params.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    return from_accept_language(request.headers.get("accept-language", "")) or DEFAULT_LANGUAGE


def static_files() -> StaticFiles:
    """The stylesheet and other static assets, served under /static."""
    return StaticFiles(directory=STATIC_DIR)
