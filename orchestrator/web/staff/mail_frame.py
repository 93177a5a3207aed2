"""Showing a mail's HTML to staff safely: in a sandboxed frame, never inside a staff page.

The HTML of a mail carries user-influenced text (names, titles). A staff page embeds it as
`<iframe sandbox src=...>`; the frame's route answers the HTML alone under a CSP that
allows no script, no connection, no form and no plug-in, only the mail's own inline styles,
and only our own pages may frame it. The embedding page's CSP gains `frame-src 'self'`.
"""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from orchestrator.web import pages

FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
FRAME_HEADERS = {
    **pages.PRIVATE_HEADERS,
    "Content-Security-Policy": FRAME_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


def frame(html: str) -> HTMLResponse:
    """A mail's HTML as the frame's whole document."""
    return HTMLResponse(html, headers=FRAME_HEADERS)


def with_frames(response: HTMLResponse) -> HTMLResponse:
    """A staff page that embeds such frames: its CSP lets our own frames in."""
    policy = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = f"{policy}; frame-src 'self'"
    return response
