"""Invitations of a conference: queue them (and any calendar changes), watch delivery."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from orchestrator.invitations import runs
from orchestrator.mail.outbox import counts_by_state, failure_reasons
from orchestrator.mail.rendering import message_domain
from orchestrator.web.deps import AppClock, AppSettings, ConferenceBySlug, DbSession, Sessions

router = APIRouter(prefix="/conferences/{slug}/invitations", tags=["invitations"])

MailKind = Literal["invitation", "update", "cancellation"]


class RunOut(BaseModel):
    """What one run queued."""

    people: int
    queued: int
    updated: int
    cancelled: int
    failed: list[str] = Field(description="ids of people no mail could be built for (failed)")


class FailureOut(BaseModel):
    reason: str = Field(description="German first, then English; or the mail server's reply")
    count: int


class SendOut(BaseModel):
    invitations: RunOut
    changes: RunOut
    outbox: dict[str, int]
    failures: list[FailureOut]


class ProgressOut(BaseModel):
    outbox: dict[str, int]
    total: int
    failures: list[FailureOut] = Field(description="why the failed mails failed, with counts")


async def _failures(session: DbSession, conference_id: int, kind: str | None) -> list[FailureOut]:
    found = await failure_reasons(session, conference_id, kind)
    return [FailureOut(reason=reason, count=count) for reason, count in found]


@router.post("/send")
async def send_invitations(
    conference: ConferenceBySlug,
    session: DbSession,
    sessions: Sessions,
    settings: AppSettings,
    clock: AppClock,
    kind: Annotated[MailKind | None, Query(description="count only mails of this kind")] = None,
) -> SendOut:
    """Queue invitations for everyone not yet invited, then updates and cancellations for
    changed calendars; idempotent. `outbox` counts this conference's mails by state.

    Invitations commit in chunks as they are rendered: the mail sender starts on the first
    ones while the rest are rendered, and other requests are served in between."""
    sender = settings.mail_from
    invited, changed = await runs.invite_everyone(
        sessions,
        conference.slug,
        base_url=settings.base_url,
        message_domain=message_domain(sender),
        sender=sender,
        clock=clock,
    )
    return SendOut(
        invitations=RunOut(**asdict(invited)),
        changes=RunOut(**asdict(changed)),
        outbox=await counts_by_state(session, conference.id, kind),
        failures=await _failures(session, conference.id, kind),
    )


@router.get("")
async def invitation_progress(
    conference: ConferenceBySlug,
    session: DbSession,
    kind: Annotated[MailKind | None, Query(description="only mails of this kind")] = None,
) -> ProgressOut:
    """The conference's mails by delivery state (queued, sending, sent, retry, failed), and
    why those that failed did."""
    counts = await counts_by_state(session, conference.id, kind)
    failures = await _failures(session, conference.id, kind)
    return ProgressOut(outbox=counts, total=sum(counts.values()), failures=failures)
