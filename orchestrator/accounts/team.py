"""A conference's team: who has which role there, inviting people, taking a role back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import ApiToken, StaffGrant, StaffRole, StaffUser
from orchestrator.conferences import repository as conferences
from orchestrator.conferences.models import Conference
from orchestrator.errors import InvalidInputError, NotFoundError


@dataclass(frozen=True)
class Member:
    """A user and their grants that concern one conference."""

    user: StaffUser
    grants: list[StaffGrant]

    @property
    def pending(self) -> bool:
        """Invited, but no password chosen yet."""
        return self.user.password_hash is None


async def team_of(session: AsyncSession, conference: Conference) -> list[Member]:
    """Everyone with a role in this conference, and organisers of every conference."""
    statement = (
        select(StaffUser)
        .join(StaffGrant, StaffGrant.user_id == StaffUser.id)
        .where(
            or_(
                StaffGrant.conference_id == conference.id,
                (StaffGrant.role == StaffRole.ORGANISER) & StaffGrant.conference_id.is_(None),
            )
        )
        .order_by(StaffUser.email)
        .distinct()
    )
    members = []
    for user in (await session.execute(statement)).scalars():
        mine = [g for g in user.grants if g.conference_id in (conference.id, None)]
        members.append(Member(user, mine))
    return members


async def invite(
    session: AsyncSession,
    conference: Conference,
    email: str,
    role: str,
    now: datetime,
    *,
    forum_key: str = "",
    name: str = "",
    inviter: int | None = None,
) -> StaffUser:
    """Give someone a role in this conference (an account is made when there is none)."""
    try:
        wanted = StaffRole(role)
    except ValueError:
        raise InvalidInputError(
            "Bitte eine Rolle wählen. / Please choose a role.", details={"field": "role"}
        ) from None
    forum_id = None
    if wanted is StaffRole.MODERATOR:
        try:
            forum_id = conferences.forum_by_key(conference, forum_key).id
        except NotFoundError:
            raise InvalidInputError(
                "Bitte das Forum wählen, das die Person moderiert. / "
                "Please choose the forum this person moderates.",
                details={"field": "forum"},
            ) from None
    user = await accounts.add_user(
        session,
        email,
        wanted,
        now,
        conference_id=conference.id,
        forum_id=forum_id,
        name=name,
    )
    await accounts.audit(
        session, "role_granted", now, user_id=inviter, detail=f"{user.email} {wanted.value}"
    )
    return user


async def revoke(
    session: AsyncSession, conference: Conference, grant_id: int, now: datetime, actor: int | None
) -> None:
    """Take one role in this conference back (never a role for every conference)."""
    grant = await session.get(StaffGrant, grant_id)
    if grant is None or grant.conference_id != conference.id:
        raise NotFoundError("Diese Rolle gibt es hier nicht. / No such role here.")
    detail = f"{grant.user_id} {grant.role.value}"
    await session.execute(delete(StaffGrant).where(StaffGrant.id == grant_id))
    await accounts.audit(session, "role_revoked", now, user_id=actor, detail=detail)


async def tokens_of(session: AsyncSession, user_id: int) -> list[ApiToken]:
    """A user's API tokens, live ones first, newest first."""
    statement = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
    )
    return list((await session.execute(statement)).scalars())
