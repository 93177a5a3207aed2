"""Mail for the organiser: the local sink (embedded default) and outbox progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from orchestrator.mail import sink
from orchestrator.mail.outbox import counts_by_state
from orchestrator.web.deps import AppSettings, ConferenceBySlug, DbSession

router = APIRouter(tags=["mail"])


class SinkEntryOut(BaseModel):
    name: str
    date: datetime
    recipient: str
    subject: str
    size: int


class OutboxCounts(BaseModel):
    queued: int
    sending: int
    sent: int
    retry: int
    failed: int


@router.get("/mail-sink", response_model=list[SinkEntryOut])
def mail_sink(
    settings: AppSettings, limit: Annotated[int, Query(ge=1, le=5000)] = 200
) -> list[SinkEntryOut]:
    """Messages in the local sink, newest first (empty when a real SMTP relay is used)."""
    entries = sink.list_messages(settings.mail_sink_dir, limit)
    return [SinkEntryOut(**vars(entry)) for entry in entries]


@router.get(
    "/mail-sink/{name}",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}}},
)
def mail_sink_message(name: str, settings: AppSettings) -> Response:
    """One sink message as a .eml file."""
    body = sink.read_message(settings.mail_sink_dir, name)
    disposition = f'inline; filename="{name}"'
    return Response(body, media_type="message/rfc822", headers={"Content-Disposition": disposition})


@router.get("/conferences/{slug}/outbox", response_model=OutboxCounts)
async def outbox(conference: ConferenceBySlug, session: DbSession) -> OutboxCounts:
    """How many of the conference's mails are in each outbox state."""
    return OutboxCounts(**await counts_by_state(session, conference.id))
