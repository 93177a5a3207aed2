"""Staff accounts: adding people with a role, sign-in with throttling, sessions, links, tokens.

Sessions are rows (a cookie carries a random token, the row its SHA-256), so logging out or
changing the password ends them at once, in every process. Failed sign-ins are rows too,
counted per account and per client address: the account limit holds whatever address or
X-Forwarded-For a guesser sends.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import passwords
from orchestrator.accounts.models import (
    ApiToken,
    LinkPurpose,
    LoginFailure,
    StaffAudit,
    StaffGrant,
    StaffLink,
    StaffLogin,
    StaffRole,
    StaffUser,
)
from orchestrator.errors import InvalidInputError, NotFoundError, OrchestratorError

SESSION_LIFETIME = timedelta(hours=12)
LINK_LIFETIME = {
    LinkPurpose.SET_PASSWORD: timedelta(days=7),
    LinkPurpose.RESET_PASSWORD: timedelta(hours=2),
}
THROTTLE_WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 10  # failed sign-ins per account in the window
CLIENT_LIMIT = 30  # per client address (several people may share one office address)
EMAIL_MAX = 254
LANGUAGES = ("de", "en")

WRONG_LOGIN = "E-Mail-Adresse oder Passwort ist falsch. / The email address or password is wrong."
LINK_INVALID = (
    "Dieser Link ist ungültig, abgelaufen oder schon benutzt. Bitte fordern Sie einen neuen "
    "an. / This link is invalid, has expired or was used already. Please ask for a new one."
)


class LoginRefusedError(OrchestratorError):
    status_code = 401
    code = "login_refused"


class LoginThrottledError(OrchestratorError):
    status_code = 429
    code = "login_throttled"

    def __init__(self, message: str, *, retry_after: timedelta) -> None:
        super().__init__(message, details={"retry_after": int(retry_after.total_seconds())})
        self.retry_after = retry_after


@dataclass(frozen=True)
class Grant:
    role: StaffRole
    conference_id: int | None
    forum_id: int | None


@dataclass(frozen=True)
class Principal:
    """Who acts: a staff user with their grants, or the operator's ORCH_API_KEY (everything)."""

    user_id: int | None
    email: str
    name: str
    language: str | None  # None: follow the browser
    grants: tuple[Grant, ...]
    operator: bool = False

    @property
    def organises_everything(self) -> bool:
        return self.operator or any(
            g.role is StaffRole.ORGANISER and g.conference_id is None for g in self.grants
        )

    def organises(self, conference_id: int) -> bool:
        return self.organises_everything or any(
            g.role is StaffRole.ORGANISER and g.conference_id == conference_id for g in self.grants
        )

    def checks_in(self, conference_id: int) -> bool:
        return self.organises(conference_id) or any(
            g.role is StaffRole.CHECKIN and g.conference_id == conference_id for g in self.grants
        )

    def moderates(self, conference_id: int, forum_id: int) -> bool:
        return self.organises(conference_id) or any(
            g.role is StaffRole.MODERATOR and g.forum_id == forum_id for g in self.grants
        )

    def conference_ids(self) -> set[int]:
        """Conferences named in a grant (an organiser of everything sees them all anyway)."""
        return {g.conference_id for g in self.grants if g.conference_id is not None}


OPERATOR = Principal(None, "", "Betrieb / operator", None, (), operator=True)


def secret_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def normalise_email(text: str) -> str:
    """Lowercased and checked as the participant import checks (email-validator, no DNS);
    an error naming the field when it cannot be an address."""
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInputError(
            "Bitte eine gültige E-Mail-Adresse angeben. / Please give a valid email address.",
            details={"field": "email"},
        ) from None
    email = checked.normalized.lower()
    if len(email) > EMAIL_MAX:
        raise InvalidInputError(
            "Die E-Mail-Adresse ist zu lang. / The email address is too long.",
            details={"field": "email"},
        )
    return email


def principal(user: StaffUser) -> Principal:
    grants = tuple(Grant(g.role, g.conference_id, g.forum_id) for g in user.grants)
    return Principal(user.id, user.email, user.name, user.language, grants)


async def audit(
    session: AsyncSession,
    action: str,
    now: datetime,
    *,
    user_id: int | None = None,
    client: str = "",
    detail: str = "",
) -> None:
    session.add(
        StaffAudit(at=now, user_id=user_id, action=action, client=client[:64], detail=detail)
    )


async def find_user(session: AsyncSession, email: str) -> StaffUser | None:
    return (
        await session.execute(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    ).scalar_one_or_none()


async def add_user(
    session: AsyncSession,
    email: str,
    role: StaffRole,
    now: datetime,
    *,
    conference_id: int | None = None,
    forum_id: int | None = None,
    name: str = "",
    language: str | None = None,
) -> StaffUser:
    """The user with this email (made if new), given this role; adding a role twice is a no-op."""
    if role is StaffRole.MODERATOR and forum_id is None:
        raise InvalidInputError(
            "Moderation braucht ein Forum. / A moderator needs a forum.", details={"field": "forum"}
        )
    if role is StaffRole.CHECKIN and conference_id is None:
        raise InvalidInputError(
            "Check-in braucht eine Konferenz. / Check-in staff need a conference.",
            details={"field": "conference"},
        )
    address = normalise_email(email)
    user = await find_user(session, address)
    if user is None:
        lang = language if language in LANGUAGES else None
        user = StaffUser(email=address, name=name.strip()[:200], language=lang, created_at=now)
        user.grants = []
        session.add(user)
    wanted = Grant(role, conference_id, forum_id)
    if wanted not in {Grant(g.role, g.conference_id, g.forum_id) for g in user.grants}:
        user.grants.append(StaffGrant(role=role, conference_id=conference_id, forum_id=forum_id))
    await session.flush()
    return user


async def issue_link(
    session: AsyncSession, user: StaffUser, purpose: LinkPurpose, now: datetime
) -> str:
    """A new one-time link token (earlier unused ones of the same purpose stop working)."""
    await session.execute(
        update(StaffLink)
        .where(
            StaffLink.user_id == user.id,
            StaffLink.purpose == purpose,
            StaffLink.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = new_secret()
    expires = now + LINK_LIFETIME[purpose]
    session.add(
        StaffLink(
            token_hash=secret_hash(token),
            user_id=user.id,
            purpose=purpose,
            created_at=now,
            expires_at=expires,
        )
    )
    await session.flush()
    return token


async def link_user(session: AsyncSession, token: str, now: datetime) -> StaffUser:
    """The user a valid, unused link belongs to; LINK_INVALID otherwise."""
    link = (
        await session.execute(select(StaffLink).where(StaffLink.token_hash == secret_hash(token)))
    ).scalar_one_or_none()
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise NotFoundError(LINK_INVALID)
    user = await session.get(StaffUser, link.user_id)
    if user is None or user.disabled_at is not None:
        raise NotFoundError(LINK_INVALID)
    return user


async def set_password_by_link(
    session: AsyncSession, token: str, password: str, now: datetime, client: str = ""
) -> StaffUser:
    """Set the password through a link; the link is spent and every session ends."""
    user = await link_user(session, token, now)
    digest = passwords.hash_password(password)
    await session.execute(
        update(StaffLink).where(StaffLink.token_hash == secret_hash(token)).values(used_at=now)
    )
    await _set_password(session, user, digest, now)
    await audit(session, "password_set", now, user_id=user.id, client=client)
    return user


async def change_password(
    session: AsyncSession, user: StaffUser, old: str, new: str, now: datetime, client: str = ""
) -> None:
    """Change one's own password (the old one proves it); every session of the user ends."""
    if not passwords.verify(user.password_hash, old):
        raise InvalidInputError(
            "Das bisherige Passwort stimmt nicht. / The current password is wrong.",
            details={"field": "old_password"},
        )
    await _set_password(session, user, passwords.hash_password(new), now)
    await audit(session, "password_changed", now, user_id=user.id, client=client)


async def _set_password(session: AsyncSession, user: StaffUser, digest: str, now: datetime) -> None:
    user.password_hash = digest
    user.password_changed_at = now
    await revoke_logins(session, user.id, now)
    await session.execute(
        delete(LoginFailure).where(LoginFailure.subject == f"account:{user.email}")
    )
    await session.flush()


async def _failures(session: AsyncSession, subject: str, now: datetime) -> list[datetime]:
    rows = await session.scalars(
        select(LoginFailure.at)
        .where(LoginFailure.subject == subject, LoginFailure.at > now - THROTTLE_WINDOW)
        .order_by(LoginFailure.at)
    )
    return list(rows)


async def throttled_for(
    session: AsyncSession, email: str, client: str, now: datetime
) -> timedelta | None:
    """How long sign-ins for this account or from this client must wait, or None."""
    waits = []
    for subject, limit in ((f"account:{email}", ACCOUNT_LIMIT), (f"client:{client}", CLIENT_LIMIT)):
        recent = await _failures(session, subject, now)
        if len(recent) >= limit:
            waits.append(recent[-limit] + THROTTLE_WINDOW - now)
    return max(waits) if waits else None


async def authenticate(
    session: AsyncSession, email: str, password: str, client: str, now: datetime
) -> StaffUser:
    """The user if email and password match and neither account nor client is throttled."""
    address = email.strip().lower()[:EMAIL_MAX]
    wait = await throttled_for(session, address, client, now)
    if wait is not None:
        await audit(session, "login_throttled", now, client=client, detail=address)
        raise LoginThrottledError(
            "Zu viele Fehlversuche. Bitte warten Sie einige Minuten. / "
            "Too many failed attempts. Please wait a few minutes.",
            retry_after=wait,
        )
    user = await find_user(session, address)
    stored = user.password_hash if user is not None and user.disabled_at is None else None
    if not passwords.verify(stored, password) or user is None:
        for subject in (f"account:{address}", f"client:{client}"):
            session.add(LoginFailure(subject=subject[:300], at=now))
        await audit(
            session,
            "login_failed",
            now,
            user_id=user.id if user else None,
            client=client,
            detail=address,
        )
        raise LoginRefusedError(WRONG_LOGIN)
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    await session.execute(delete(LoginFailure).where(LoginFailure.subject == f"account:{address}"))
    await audit(session, "login", now, user_id=user.id, client=client)
    return user


async def open_login(session: AsyncSession, user: StaffUser, now: datetime) -> str:
    """A new session for this user; the token goes into the cookie."""
    token = new_secret()
    session.add(
        StaffLogin(
            token_hash=secret_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    await session.flush()
    return token


async def login_user(session: AsyncSession, token: str, now: datetime) -> StaffUser | None:
    """The user of a live session token, or None (unknown, expired, revoked, disabled)."""
    statement = (
        select(StaffUser)
        .join(StaffLogin, StaffLogin.user_id == StaffUser.id)
        .where(
            StaffLogin.token_hash == secret_hash(token),
            StaffLogin.revoked_at.is_(None),
            StaffLogin.expires_at > now,
            StaffUser.disabled_at.is_(None),
        )
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def close_login(
    session: AsyncSession, token: str, user_id: int | None, now: datetime, client: str = ""
) -> None:
    await session.execute(
        update(StaffLogin)
        .where(StaffLogin.token_hash == secret_hash(token), StaffLogin.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await audit(session, "logout", now, user_id=user_id, client=client)


async def revoke_logins(session: AsyncSession, user_id: int, now: datetime) -> None:
    await session.execute(
        update(StaffLogin)
        .where(StaffLogin.user_id == user_id, StaffLogin.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def set_language(session: AsyncSession, user: StaffUser, language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInputError(
            "Sprache: de oder en. / Language: de or en.", details={"field": "language"}
        )
    user.language = language
    await session.flush()


async def make_api_token(session: AsyncSession, user: StaffUser, label: str, now: datetime) -> str:
    token = "orch_" + new_secret()
    row = ApiToken(token_hash=secret_hash(token), user_id=user.id, label=label.strip()[:100])
    row.created_at = now
    session.add(row)
    await audit(session, "api_token_created", now, user_id=user.id, detail=row.label)
    await session.flush()
    return token


async def api_token_user(session: AsyncSession, token: str, now: datetime) -> StaffUser | None:
    """The owner of a live API token (its last use noted), or None."""
    row = (
        await session.execute(
            select(ApiToken).where(
                ApiToken.token_hash == secret_hash(token), ApiToken.revoked_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    user = await session.get(StaffUser, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    row.last_used_at = now
    return user


async def revoke_api_token(
    session: AsyncSession, user: StaffUser, token_id: int, now: datetime
) -> None:
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if getattr(result, "rowcount", 0) == 0:
        raise NotFoundError("Diesen Schlüssel gibt es nicht. / No such token.")
    await audit(session, "api_token_revoked", now, user_id=user.id, detail=str(token_id))


async def count_users(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(StaffUser))).scalar_one())
