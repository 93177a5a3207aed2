"""Attendance: the reconciled list, CSV/XLSX downloads and organisers' overrides (§4.7)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from orchestrator.attendance import exports, overrides
from orchestrator.attendance.current import current_table
from orchestrator.attendance.models import AttendanceOverride, AttendanceStatus
from orchestrator.attendance.reconcile import Source
from orchestrator.attendance.table import Row
from orchestrator.conferences.models import SessionKind
from orchestrator.conferences.repository import session_by_key
from orchestrator.participants.models import AttendanceMode
from orchestrator.web.deps import AppClock, ConferenceBySlug, DbSession, RoomTemplates, Sessions

router = APIRouter(prefix="/conferences/{slug}/attendance", tags=["attendance"])

CSV_TYPE = exports.CSV_TYPE
XLSX_TYPE = exports.XLSX_TYPE


class RowOut(BaseModel):
    person_id: uuid.UUID
    name: str
    organisation: str
    mode: AttendanceMode
    session: str
    session_kind: SessionKind
    forum: str | None = Field(description="forum key")
    expected: bool
    status: AttendanceStatus
    computed_status: AttendanceStatus = Field(description="the rules' verdict, no override")
    minutes: int
    first_join: datetime | None
    last_leave: datetime | None
    source: Source
    reason: str | None = Field(description="the deciding override's reason")


class ForumSummaryOut(BaseModel):
    forum: str | None
    title: str
    expected: int
    present: int
    partial: int
    absent: int
    excused: int
    minutes: int


class AttendanceOut(BaseModel):
    rows: list[RowOut]
    summary: list[ForumSummaryOut]


class OverrideIn(BaseModel):
    person_id: uuid.UUID
    session: str = Field(max_length=40, description="session key")
    status: AttendanceStatus
    reason: str = Field(min_length=1, max_length=overrides.MAX_REASON)
    created_by: str = Field(default="api", max_length=overrides.MAX_AUTHOR)


class OverrideOut(BaseModel):
    id: int
    person_id: uuid.UUID
    session: str
    status: AttendanceStatus
    reason: str
    created_by: str
    created_at: datetime


class AuditEntryOut(OverrideOut):
    person_name: str


def _row_out(row: Row) -> RowOut:
    record = row.record
    return RowOut(
        person_id=row.person_id,
        name=row.name,
        organisation=row.organisation,
        mode=row.mode,
        session=row.session_key,
        session_kind=row.session_kind,
        forum=row.forum_key,
        expected=row.expected,
        status=record.status,
        computed_status=record.computed_status,
        minutes=record.minutes,
        first_join=record.first_join,
        last_leave=record.last_leave,
        source=record.source,
        reason=record.reason,
    )


def _summary_out(forum: exports.ForumSummary) -> ForumSummaryOut:
    return ForumSummaryOut(
        forum=forum.key or None,
        title=forum.title,
        expected=forum.expected,
        present=forum.present,
        partial=forum.partial,
        absent=forum.absent,
        excused=forum.excused,
        minutes=forum.minutes,
    )


def _download(body: bytes, media_type: str, slug: str, extension: str) -> Response:
    disposition = f'attachment; filename="{exports.download_name(slug, extension)}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("")
async def attendance(
    conference: ConferenceBySlug,
    session: DbSession,
    sessions: Sessions,
    templates: RoomTemplates,
    clock: AppClock,
    session_key: Annotated[str | None, Query(alias="session", max_length=40)] = None,
) -> AttendanceOut:
    """One row per person and session with its status, and the per-forum summary; every
    event_sync event accepted before the request counts."""
    rows = await current_table(session, sessions, conference, clock, templates)
    if session_key is not None:
        rows = [row for row in rows if row.session_key == session_key]
    return AttendanceOut(
        rows=[_row_out(row) for row in rows],
        summary=[_summary_out(forum) for forum in exports.summary(rows)],
    )


@router.get("/export.csv", response_class=Response, responses={200: {"content": {CSV_TYPE: {}}}})
async def export_csv(
    conference: ConferenceBySlug,
    session: DbSession,
    sessions: Sessions,
    templates: RoomTemplates,
    clock: AppClock,
) -> Response:
    """The list as CSV for German Excel (UTF-8 with BOM, `;`), with every accepted event."""
    rows = await current_table(session, sessions, conference, clock, templates)
    return _download(exports.to_csv(rows), CSV_TYPE, conference.slug, "csv")


@router.get("/export.xlsx", response_class=Response, responses={200: {"content": {XLSX_TYPE: {}}}})
async def export_xlsx(
    conference: ConferenceBySlug,
    session: DbSession,
    sessions: Sessions,
    templates: RoomTemplates,
    clock: AppClock,
) -> Response:
    """The list as XLSX: sheet "Anwesenheit" and the per-forum sheet "Foren"; with every
    accepted event."""
    rows = await current_table(session, sessions, conference, clock, templates)
    body = exports.to_xlsx(rows, exports.summary(rows))
    return _download(body, XLSX_TYPE, conference.slug, "xlsx")


def _override_out(entry: AttendanceOverride, session_key: str) -> OverrideOut:
    return OverrideOut(
        id=entry.id,
        person_id=entry.person_id,
        session=session_key,
        status=entry.status,
        reason=entry.reason,
        created_by=entry.created_by,
        created_at=entry.created_at,
    )


@router.post("/overrides", status_code=status.HTTP_201_CREATED)
async def create_override(
    body: OverrideIn, conference: ConferenceBySlug, session: DbSession
) -> OverrideOut:
    """Set a person's status at a session (e.g. excused), with a reason; the latest wins."""
    item = session_by_key(conference, body.session)
    entry = await overrides.override(
        session, body.person_id, item.id, body.status, body.reason, body.created_by
    )
    return _override_out(entry, item.key)


@router.get("/overrides")
async def list_overrides(conference: ConferenceBySlug, session: DbSession) -> list[AuditEntryOut]:
    """The audit trail: every override ever made, oldest first."""
    return [
        AuditEntryOut(
            id=entry.id,
            person_id=entry.person_id,
            person_name=entry.person_name,
            session=entry.session_key,
            status=entry.status,
            reason=entry.reason,
            created_by=entry.created_by,
            created_at=entry.created_at,
        )
        for entry in await overrides.audit_trail(session, conference)
    ]
