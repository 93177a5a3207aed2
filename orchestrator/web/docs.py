"""/docs: the API documentation (Swagger UI) served from the package, offline, under a CSP.

FastAPI's own /docs and /redoc load their scripts from a CDN and start them with an inline
script; here both files come from static/vendor (swagger-ui-dist, from the npm registry) and
static/docs.js starts them, so no inline script is needed and none is allowed.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from orchestrator.web import pages

router = APIRouter(include_in_schema=False)
SWAGGER = "/static/vendor/swagger-ui-dist-5.35.0"
HEADERS = {
    **pages.PAGE_HEADERS,
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
}
PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex, nofollow">
  <title>API – Konferenz-Orchestrator</title>
  <link rel="stylesheet" href="{SWAGGER}/swagger-ui.css">
  <script src="{SWAGGER}/swagger-ui-bundle.js" defer></script>
  <script src="/static/docs.js" defer></script>
</head>
<body>
  <main id="swagger-ui"></main>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
async def docs() -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    return HTMLResponse(PAGE, headers=HEADERS)
