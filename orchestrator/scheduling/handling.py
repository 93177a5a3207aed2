"""Due reminders: claimed atomically, checked once more, then queued as mail or skipped.

The scheduler (the edge) calls, in one transaction: `claim_due`, then `handle_due`, then
commits; `next_due_at` tells it when to wake up. Before a reminder is queued it is checked
against the plan as it is now (an RSVP, consent, seat or session may have changed since it
was planned; a time moved into the future plans the row again) and against its deadline
(see `planning`). The outbox row takes the reminder's dedup key, so no second handler can
ever queue the same reminder twice. Nothing is sent to people never invited.

Attendance decides the mails after the conference: when the conference has no attendance
data at all, the no-show follow-up is skipped and the thank-you goes to everyone who
accepted or answered tentatively; with data, the thank-you goes to people who attended
(present or partial) and the no-show mail to those who accepted and did not (not excused).
The thank-you and no-show mails link to `{personal page}#ergebnisse`, where the results
appear (the page says they will follow until they exist).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from orchestrator.attendance.models import (
    AttendanceOverride,
    AttendanceStatus,
    CheckIn,
    PresenceInterval,
)
from orchestrator.attendance.table import attendance_table
from orchestrator.collector import collector_paused
from orchestrator.conferences.models import Conference
from orchestrator.conferences.repository import CONFERENCE_GRAPH
from orchestrator.mail.outbox import Outgoing, enqueue_many

# _block and _tidy: render() itself only knows the KINDS of invitations (see render_reminder).
from orchestrator.mail.rendering import (
    LANGUAGES,
    Rendered,
    _block,
    _tidy,
    build_message,
    environment,
    mailbox,
    one_line,
)
from orchestrator.participants.models import Person, Rsvp
from orchestrator.participants.service import personal_url
from orchestrator.scheduling.agenda import Agenda, kind_context
from orchestrator.scheduling.models import Reminder, ReminderKind, ReminderState
from orchestrator.scheduling.planning import (
    NOT_WANTED,
    PlannedReminder,
    exclusion,
    load_people,
    load_seats,
    plan_for,
)

log = logging.getLogger(__name__)

TOO_LATE = "zu spät"
TEMPLATES = {kind: kind.value for kind in ReminderKind} | {ReminderKind.BEFORE_SESSION: "reminder"}
_AFTER = frozenset({ReminderKind.THANK_YOU, ReminderKind.NO_SHOW})


@dataclass
class HandleReport:
    """What one pass over due reminders did."""

    queued: int = 0
    skipped: int = 0
    moved: int = 0  # their time moved into the future: planned again
    notes: Counter[str] = field(default_factory=Counter)  # skipped, by reason


@dataclass(frozen=True)
class _Attendance:
    attended: frozenset[uuid.UUID]  # present or partial at any session
    excused: frozenset[uuid.UUID]  # excused, and present at none


@dataclass
class _Batch:
    """One conference's due reminders and what deciding on them needs."""

    conference: Conference
    people: dict[uuid.UUID, Person]
    seats: dict[uuid.UUID, dict[int, int | None]]
    attendance: _Attendance | None
    agenda: Agenda
    plans: dict[uuid.UUID, dict[str, PlannedReminder]] = field(default_factory=dict)
    # New column values -> the rows taking them: one UPDATE by id list each.
    writes: dict[tuple[tuple[str, Any], ...], list[Reminder]] = field(default_factory=dict)

    def planned(self, person_id: uuid.UUID) -> dict[str, PlannedReminder]:
        """The person's plan as it is now, by dedup key (empty if the person is gone)."""
        person = self.people.get(person_id)
        if person is not None and person_id not in self.plans:
            plan = plan_for(self.conference, person, self.seats.get(person_id, {}))
            self.plans[person_id] = {item.dedup_key: item for item in plan}
        return self.plans.get(person_id, {})

    def write(self, row: Reminder, **values: Any) -> None:
        """Give the row new values when the batch is written (see `_write`)."""
        self.writes.setdefault(tuple(values.items()), []).append(row)


@dataclass(frozen=True)
class _Mailing:
    base_url: str
    sender: str
    now: datetime


async def claim_due(session: AsyncSession, now: datetime, limit: int = 500) -> list[Reminder]:
    """Take up to `limit` due planned rows, locked until the caller commits.

    The claim is an UPDATE: on PostgreSQL its subquery skips rows another worker holds
    (FOR UPDATE SKIP LOCKED); on SQLite it takes the write lock, so a second worker waits and
    then finds the rows handled. Call it first in a fresh transaction, then `handle_due`.
    """
    pick = (
        select(Reminder.id)
        .where(Reminder.state == ReminderState.PLANNED, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    claim = (
        update(Reminder)
        .where(Reminder.id.in_(pick.scalar_subquery()))
        .values(handled_at=now)
        .returning(Reminder.id)
        .execution_options(synchronize_session=False)
    )
    ids = list((await session.execute(claim)).scalars())
    if not ids:
        return []
    rows = (
        select(Reminder)
        .where(Reminder.id.in_(ids))
        .order_by(Reminder.due_at, Reminder.id)
        .execution_options(populate_existing=True)
    )
    return list(await session.scalars(rows))


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest planned reminder falls due (the scheduler's next wake-up)."""
    statement = select(func.min(Reminder.due_at)).where(Reminder.state == ReminderState.PLANNED)
    return await session.scalar(statement)


# --- attendance ----------------------------------------------------------------------


async def _has_attendance_data(session: AsyncSession, conference: Conference) -> bool:
    """Whether anything at all was recorded: video stays, check-ins or overrides."""
    sessions = [item.id for item in conference.sessions]
    rooms = [room.id for room in conference.rooms]
    stays = or_(
        PresenceInterval.conference_id == conference.id, PresenceInterval.room_id.in_(rooms)
    )
    probes = (
        select(PresenceInterval.id).where(stays),
        select(CheckIn.id).where(CheckIn.session_id.in_(sessions)),
        select(AttendanceOverride.id).where(AttendanceOverride.session_id.in_(sessions)),
    )
    for probe in probes:
        if await session.scalar(probe.limit(1)) is not None:
            return True
    return False


async def _attendance(
    session: AsyncSession, conference: Conference, now: datetime
) -> _Attendance | None:
    """Who attended and who was excused; None when the conference has no attendance data."""
    if not await _has_attendance_data(session, conference):
        return None
    rows = await attendance_table(session, conference, now)
    came = (AttendanceStatus.PRESENT, AttendanceStatus.PARTIAL)
    attended = {row.person_id for row in rows if row.record.status in came}
    excused = {row.person_id for row in rows if row.record.status is AttendanceStatus.EXCUSED}
    return _Attendance(frozenset(attended), frozenset(excused - attended))


def _after_check(batch: _Batch, person: Person, kind: ReminderKind) -> str | None:
    """Why the thank-you or the no-show follow-up does not go to this person, or None."""
    seen = batch.attendance
    if kind is ReminderKind.NO_SHOW:
        if seen is None:
            return "keine Anwesenheitsdaten"
        if person.id in seen.attended:
            return "teilgenommen"
        return "entschuldigt" if person.id in seen.excused else None
    if seen is None:
        return None if person.rsvp in (Rsvp.ACCEPTED, Rsvp.TENTATIVE) else "keine Zusage"
    return None if person.id in seen.attended else "nicht teilgenommen"


# --- the mails -----------------------------------------------------------------------


def render_reminder(template: str, language: str, context: Mapping[str, Any]) -> Rendered:
    """Render a reminder template as `mail.rendering.render` renders the invitation kinds."""
    if template not in TEMPLATES.values() or language not in LANGUAGES:
        raise ValueError(f"no mail template {template}.{language}")
    text_template = environment().get_template(f"{template}.{language}.txt")
    subject = one_line(_block(text_template, "subject", context))
    text = _tidy(text_template.render(context))
    html_template = environment().get_template(f"{template}.{language}.html")
    return Rendered(subject, text, html_template.render({**context, "subject": subject}))


def _mail(mailing: _Mailing, batch: _Batch, person: Person, planned: PlannedReminder) -> Outgoing:
    """Render one reminder mail for the outbox, keyed by the reminder's dedup key."""
    conference = batch.conference
    items = batch.agenda.items(person, batch.seats.get(person.id, {}))
    page = personal_url(mailing.base_url, person)
    context: dict[str, Any] = {
        "name": one_line(person.display_name),
        "conference": conference,
        "timezone": conference.timezone,
        "personal_url": page,
        "results_url": f"{page}#ergebnisse",
        "agenda": list(items.values()),
        "cancelled": [],
    }
    context |= kind_context(conference, planned, items, mailing.now)
    template, language = TEMPLATES[planned.kind], person.language.value
    message = build_message(
        render_reminder(template, language, context),
        sender=mailing.sender,
        recipient=mailbox(person.display_name, person.email),
        calendar=None,
        method=None,
        language=language,
        reply_to=conference.organiser_email or None,
    )
    return Outgoing(template, planned.dedup_key, person.email, message, conference.id, person.id)


# --- deciding ------------------------------------------------------------------------


async def _batch(
    session: AsyncSession, conference_id: int, rows: Sequence[Reminder], mailing: _Mailing
) -> _Batch | None:
    """Load the conference, the people and their seats (and attendance, when it matters)."""
    statement = select(Conference).where(Conference.id == conference_id).options(*CONFERENCE_GRAPH)
    conference = await session.scalar(statement)
    if conference is None:
        return None
    ids = {row.person_id for row in rows}
    people = {person.id: person for person in await load_people(session, conference_id, ids)}
    seats = await load_seats(session, conference_id, ids)
    attendance = None
    if any(row.kind in _AFTER for row in rows):
        attendance = await _attendance(session, conference, mailing.now)
    return _Batch(conference, people, seats, attendance, Agenda(conference, mailing.base_url))


def _verdict(batch: _Batch, row: Reminder, now: datetime) -> PlannedReminder | str:
    """The reminder as planned now, when it is to be sent now; otherwise why not."""
    person = batch.people.get(row.person_id)
    if person is None:
        return "Person entfernt"
    if (why := exclusion(person)) is not None:
        return why
    planned = batch.planned(person.id).get(row.dedup_key)
    if planned is None:
        return NOT_WANTED
    if now >= planned.deadline:
        return TOO_LATE
    if person.invited_at is None:
        return "nicht eingeladen"
    if row.kind in _AFTER:
        return _after_check(batch, person, row.kind) or planned
    return planned


def _skip(batch: _Batch, row: Reminder, note: str, now: datetime, report: HandleReport) -> None:
    batch.write(row, state=ReminderState.SKIPPED, note=note[:200], handled_at=now)
    report.skipped += 1
    report.notes[note] += 1


def _decide(
    batch: _Batch, row: Reminder, mailing: _Mailing, report: HandleReport
) -> Outgoing | None:
    """Plan the row again, skip it with the reason, or mark it queued and return its mail."""
    now = mailing.now
    later = batch.planned(row.person_id).get(row.dedup_key)
    if later is not None and later.due_at > now and later.due_at != row.due_at:
        batch.write(row, due_at=later.due_at, handled_at=None)
        report.moved += 1
        return None
    verdict = _verdict(batch, row, now)
    if isinstance(verdict, str):
        _skip(batch, row, verdict, now, report)
        return None
    try:
        mail = _mail(mailing, batch, batch.people[row.person_id], verdict)
    except ValueError as error:  # an address no mail can carry, or no session or room left
        _skip(batch, row, str(error), now, report)
        return None
    except Exception as error:  # a bug in one mail must not hold back every row due after it
        log.exception("reminders.render_failed", extra={"reminder": row.id})
        _skip(batch, row, f"Fehler beim Erstellen: {type(error).__name__}", now, report)
        return None
    batch.write(row, state=ReminderState.QUEUED, due_at=verdict.due_at, handled_at=now, note="")
    report.queued += 1
    return mail


_TABLE = cast(Table, Reminder.__table__)
_CHUNK = 500  # ids per statement


async def _write(session: AsyncSession, batch: _Batch) -> None:
    """One UPDATE by id list per set of new values (a third of the ORM flush's time).

    The loaded rows take the values as committed ones, so no flush writes them again.
    """
    for values, rows in batch.writes.items():
        ids = [row.id for row in rows]
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            await session.execute(update(_TABLE).where(_TABLE.c.id.in_(chunk)).values(dict(values)))
        for row in rows:
            for name, value in values:
                set_committed_value(row, name, value)


async def handle_due(
    session: AsyncSession,
    reminders: Sequence[Reminder],
    now: datetime,
    *,
    base_url: str,
    message_domain: str,
    sender: str,
) -> HandleReport:
    """Queue each due reminder that still applies and is in time; skip the rest with a note.

    Rows not planned any more (handled by another pass) are left alone. Writes only; the
    caller commits, together with the claim.
    """
    report, mailing = HandleReport(), _Mailing(base_url, sender, now)
    groups: dict[int, list[Reminder]] = {}
    for row in reminders:
        if row.state is ReminderState.PLANNED:
            groups.setdefault(row.conference_id, []).append(row)
    mails: list[Outgoing] = []
    with collector_paused():
        for conference_id, rows in groups.items():
            batch = await _batch(session, conference_id, rows, mailing)
            if batch is None:
                continue  # the conference is gone, and its reminders with it
            for row in rows:
                if (mail := _decide(batch, row, mailing, report)) is not None:
                    mails.append(mail)
            await _write(session, batch)
        await enqueue_many(session, mails, message_domain=message_domain, now=now)
    if report.queued or report.moved:
        log.info("reminders.queued", extra={"count": report.queued, "moved": report.moved})
    if report.skipped:
        log.info("reminders.skipped", extra={"count": report.skipped, "why": dict(report.notes)})
    return report
