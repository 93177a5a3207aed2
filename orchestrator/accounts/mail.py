"""The one mail a staff account gets: its set-password or reset link, through the outbox."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts.models import LinkPurpose, StaffGrant, StaffRole, StaffUser
from orchestrator.accounts.service import LINK_LIFETIME, issue_link, secret_hash
from orchestrator.mail.outbox import Outgoing, enqueue_many
from orchestrator.mail.rendering import build_message, long_date, mailbox, message_domain, render

KIND = "staff_link"
ZONE = ZoneInfo("Europe/Berlin")  # staff work in the county's time
ROLE_TEXT = {
    "de": {
        StaffRole.ORGANISER: "Organisation",
        StaffRole.MODERATOR: "Moderation eines Forums",
        StaffRole.CHECKIN: "Check-in am Eingang",
    },
    "en": {
        StaffRole.ORGANISER: "Organising",
        StaffRole.MODERATOR: "Moderating a forum",
        StaffRole.CHECKIN: "Check-in at the entrance",
    },
}


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/admin/password/{token}"


def _roles(grants: list[StaffGrant], language: str) -> list[str]:
    texts = ROLE_TEXT[language]
    return list(dict.fromkeys(texts[grant.role] for grant in grants))


def link_mail(
    user: StaffUser,
    token: str,
    purpose: LinkPurpose,
    now: datetime,
    *,
    base_url: str,
    sender: str,
) -> Outgoing:
    """The rendered mail carrying a link token, ready for the outbox."""
    language = user.language if user.language in ROLE_TEXT else "de"  # German unless picked
    until = (now + LINK_LIFETIME[purpose]).astimezone(ZONE)
    clock = f"{until:%H:%M}" + (" Uhr" if language == "de" else "")
    context = {
        "name": user.name,
        "link": link_url(base_url, token),
        "valid_until": f"{long_date(until, language)}, {clock}",
        "purpose": purpose.value,
        "roles": _roles(user.grants, language),
    }
    rendered = render(KIND, language, context)
    message = build_message(
        rendered,
        sender=sender,
        recipient=mailbox(user.name, user.email),
        calendar=None,
        method=None,
        language=language,
    )
    return Outgoing(
        kind=KIND,
        dedup_key=f"staff-link:{secret_hash(token)}",
        recipient=user.email,
        message=message,
    )


async def send_link(
    session: AsyncSession,
    user: StaffUser,
    purpose: LinkPurpose,
    now: datetime,
    *,
    base_url: str,
    sender: str,
) -> str:
    """Issue a one-time link and queue its mail in the outbox; the token (for the CLI)."""
    token = await issue_link(session, user, purpose, now)
    mail = link_mail(user, token, purpose, now, base_url=base_url, sender=sender)
    await enqueue_many(session, [mail], message_domain=message_domain(sender), now=now)
    return token
