"""Staff accounts: people who sign in to /admin, what each may do, and the trail they leave.

Every secret handed out (a session cookie, a set-password link, an API token) is stored only
as its SHA-256: a copy of the database lets nobody in.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orchestrator.db import Base, utcnow
from orchestrator.enums import str_enum


class StaffRole(StrEnum):
    ORGANISER = "organiser"  # a conference (or, without one, every conference)
    MODERATOR = "moderator"  # one forum of a conference
    CHECKIN = "checkin"  # the check-in of a conference, nothing else


class LinkPurpose(StrEnum):
    SET_PASSWORD = "set_password"  # noqa: S105  a new account's first password (invitation)
    RESET_PASSWORD = "reset_password"  # noqa: S105  "Passwort vergessen"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lowercased
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id; None: not set
    # The staff pages' language as the user picked it; None: the browser's.
    language: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]

    grants: Mapped[list[StaffGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class StaffGrant(Base):
    """One role of a user: organiser of a conference (or all), moderator of a forum, check-in."""

    __tablename__ = "staff_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole, "staff_role"))
    conference_id: Mapped[int | None] = mapped_column(
        ForeignKey("conferences.id", ondelete="CASCADE"), index=True
    )
    forum_id: Mapped[int | None] = mapped_column(
        ForeignKey("forums.id", ondelete="CASCADE"), index=True
    )

    user: Mapped[StaffUser] = relationship(back_populates="grants")

    __table_args__ = (UniqueConstraint("user_id", "role", "conference_id", "forum_id"),)


class StaffLogin(Base):
    """A signed-in browser: the cookie holds the token, this row its hash."""

    __tablename__ = "staff_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class StaffLink(Base):
    """A one-time link sent by mail: set the first password, or a new one."""

    __tablename__ = "staff_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[LinkPurpose] = mapped_column(str_enum(LinkPurpose, "staff_link_purpose"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiToken(Base):
    """A personal token for the staff API (`Authorization: Bearer`), made and revoked by its
    owner; it acts with the owner's roles."""

    __tablename__ = "staff_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A failed sign-in, counted per account and per client address for the throttle."""

    __tablename__ = "staff_login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))  # "account:<email>" or "client:<addr>"
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_staff_login_failures_subject_at", "subject", "at"),)


class StaffAudit(Base):
    """Who did what, when, from where: sign-ins, sign-outs, passwords, accounts."""

    __tablename__ = "staff_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(40))
    client: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
