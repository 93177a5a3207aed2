"""Staff accounts for tests: made through the accounts service, as the CLI makes them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import passwords
from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffRole
from orchestrator.conferences import repository

ORGANISER = "orga@example.org"
PASSWORD = "correct horse battery staple"
NOW = datetime(2027, 3, 1, tzinfo=UTC)


async def add_staff(
    session: AsyncSession,
    email: str = ORGANISER,
    role: StaffRole = StaffRole.ORGANISER,
    *,
    password: str = PASSWORD,
    conference: str | None = None,
    forum: str | None = None,
    language: str | None = None,
) -> int:
    """A staff account with a password and one role (committed); its id."""
    conference_id = forum_id = None
    if conference is not None:
        found = await repository.get_by_slug(session, conference)
        conference_id = found.id
        if forum is not None:
            forum_id = repository.forum_by_key(found, forum).id
    user = await accounts.add_user(
        session,
        email,
        role,
        NOW,
        conference_id=conference_id,
        forum_id=forum_id,
        language=language,
    )
    user.password_hash = passwords.hash_password(password)
    await session.commit()
    return user.id
