"""The organiser's view of the local mail sink (the embedded default without SMTP).

`GET /admin/mail` lists the sink's messages, newest first, a page at a time;
`GET /admin/mail/{name}` shows one message (headers, plain text, parts, and its HTML in a
sandboxed frame: `GET /admin/mail/{name}/html` answers it alone under a CSP without
scripts, see web/staff/mail_frame.py; never inside the page);
`GET /admin/mail/{name}/download` gives the original .eml as an attachment for Outlook or
Thunderbird. Names are checked by orchestrator.mail.sink;
every other path under /admin/mail/ gets the same not-found page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from orchestrator.config import Settings
from orchestrator.errors import NotFoundError
from orchestrator.mail import sink
from orchestrator.web import pages
from orchestrator.web.deps import AppSettings
from orchestrator.web.staff import (
    StaffContext,
    StaffRoute,
    StaffSession,
    admin_page,
    require_operator_organiser,
    require_staff_session,
    staff_language,
)
from orchestrator.web.staff.mail_frame import frame, with_frames

router = APIRouter(
    prefix="/admin/mail",
    route_class=StaffRoute,
    include_in_schema=False,
    dependencies=[Depends(require_staff_session), Depends(require_operator_organiser)],
)

PAGE_SIZE = 100
# The sink holds mail of every conference: its times are shown in German time.
ZONE = ZoneInfo("Europe/Berlin")
DATE_PATTERNS = {"de": "dd.MM.yyyy, HH:mm", "en": "d MMM yyyy, HH:mm"}
DOWNLOAD_HEADERS = {
    **pages.PRIVATE_HEADERS,
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _one_line(value: str) -> str:
    """Header text as one line: an encoded CR/LF or tab in a header becomes a space."""
    return " ".join(value.split())


def _when(moment: datetime, language: str) -> str:
    return format_datetime(moment, DATE_PATTERNS[language], tzinfo=ZONE, locale=language)


def _number(value: float, language: str) -> str:
    return format_decimal(value, format="#,##0.#", locale=language)


def _size(size: int, language: str) -> str:
    """Bytes for people: 812 B, 3,4 KB, 1,2 MB (decimal separator of the language)."""
    if size < 1024:
        return f"{_number(size, language)} B"
    if size < 1024 * 1024:
        return f"{_number(size / 1024, language)} KB"
    return f"{_number(size / (1024 * 1024), language)} MB"


@dataclass(frozen=True)
class Row:
    """One message as a line of the list, formatted for the page's language."""

    name: str
    when: str
    iso: str
    recipient: str
    subject: str
    size: str


@dataclass(frozen=True)
class Listing:
    """One page of the list and where it lies in the whole."""

    rows: list[Row]
    total: int
    page: int
    pages: int
    first: int
    last: int


def _row(entry: sink.SinkEntry, language: str) -> Row:
    return Row(
        name=entry.name,
        when=_when(entry.date, language),
        iso=entry.date.astimezone(ZONE).isoformat(),
        recipient=_one_line(entry.recipient),
        subject=_one_line(entry.subject),
        size=_size(entry.size, language),
    )


def _listing(settings: Settings, page: int, language: str) -> Listing:
    found = sink.page_of_messages(settings.mail_sink_dir, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    rows = [_row(entry, language) for entry in found.entries]
    first = (page - 1) * PAGE_SIZE + 1 if rows else 0
    pages_in_all = max(1, -(-found.total // PAGE_SIZE))
    return Listing(rows, found.total, page, pages_in_all, first, first + len(rows) - 1)


def _page_number(value: str) -> int:
    """?page=N (1-based); anything else is the first page."""
    return int(value) if value.isdecimal() and 0 < len(value) < 7 and int(value) > 0 else 1


def _context(request: Request, staff: StaffSession) -> dict[str, object]:
    settings: Settings = request.app.state.settings
    return {
        "csrf_token": staff.csrf_token,
        "smtp_host": settings.smtp_host or "",
        "folder": str(settings.mail_sink_dir.resolve()),
    }


def _missing(request: Request, staff: StaffSession) -> HTMLResponse:
    return admin_page(
        request, "admin_mail_missing.html", 404, staff=staff, **_context(request, staff)
    )


@router.get("", response_class=HTMLResponse)
def mail_list(
    request: Request,
    staff: StaffContext,
    settings: AppSettings,
    page: Annotated[str, Query(max_length=20)] = "1",
) -> HTMLResponse:
    """The sink's messages, newest first, PAGE_SIZE to a page."""
    language = staff_language(request, staff)
    listing = _listing(settings, _page_number(page), language)
    context = _context(request, staff)
    return admin_page(request, "admin_mail.html", staff=staff, listing=listing, **context)


@router.get("/{name}/download")
def mail_download(
    request: Request, staff: StaffContext, settings: AppSettings, name: str
) -> Response:
    """The original .eml, as a file to save or open in a mail program."""
    try:
        body = sink.read_message(settings.mail_sink_dir, name)
    except (NotFoundError, FileNotFoundError):  # unknown, or deleted just now
        return _missing(request, staff)
    # The name matched sink._NAME ([A-Za-z0-9._-] only): nothing to quote or escape.
    disposition = f'attachment; filename="{name}"'
    headers = {**DOWNLOAD_HEADERS, "Content-Disposition": disposition}
    return Response(body, media_type="message/rfc822", headers=headers)


@router.get("/{name}/html", response_class=HTMLResponse)
def mail_html(
    request: Request, staff: StaffContext, settings: AppSettings, name: str
) -> HTMLResponse:
    """The message's HTML part alone, for the sandboxed frame of its page (no script runs)."""
    try:
        html = sink.html_of(settings.mail_sink_dir, name)
    except (NotFoundError, FileNotFoundError):  # unknown, or deleted just now
        return _missing(request, staff)
    if html is None:
        return _missing(request, staff)
    return frame(html)


@router.get("/{name}", response_class=HTMLResponse)
def mail_message(
    request: Request, staff: StaffContext, settings: AppSettings, name: str
) -> HTMLResponse:
    """One message: headers, the plain text as sent, the list of its parts."""
    try:
        message = sink.open_message(settings.mail_sink_dir, name)
    except (NotFoundError, FileNotFoundError):  # unknown, or deleted just now
        return _missing(request, staff)
    language = staff_language(request, staff)
    context = _context(request, staff)
    page = admin_page(
        request,
        "admin_mail_message.html",
        staff=staff,
        message=message,
        row=_row(message.entry, language),
        sender=_one_line(message.sender),
        to=_one_line(message.to),
        size=lambda value: _size(value, language),
        **context,
    )
    return with_frames(page)


@router.get("/{rest:path}", response_class=HTMLResponse)
def mail_elsewhere(request: Request, staff: StaffContext, rest: str) -> Response:
    """Any other path under /admin/mail/ (e.g. ../ in any encoding): the not-found page."""
    if not rest:
        return RedirectResponse("/admin/mail", status_code=303, headers=pages.PRIVATE_HEADERS)
    return _missing(request, staff)
