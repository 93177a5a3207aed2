"""The staff area under /admin: sign-in and sessions (auth, login), then a module per area."""

from orchestrator.web.staff.auth import (
    ADMIN_HEADERS,
    COOKIE,
    LOGIN_COOKIE,
    CsrfChecked,
    StaffContext,
    StaffRoute,
    StaffSession,
    admin_page,
    require_checkin,
    require_operator_organiser,
    require_organiser,
    require_staff_session,
    staff_language,
)
from orchestrator.web.staff.login import router

__all__ = [
    "ADMIN_HEADERS",
    "COOKIE",
    "LOGIN_COOKIE",
    "CsrfChecked",
    "StaffContext",
    "StaffRoute",
    "StaffSession",
    "admin_page",
    "require_checkin",
    "require_operator_organiser",
    "require_organiser",
    "require_staff_session",
    "router",
    "staff_language",
]
