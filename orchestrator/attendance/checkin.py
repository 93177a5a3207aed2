"""In-person check-in at the venue: staff scan the invitation's QR code or search by name.

One row per person and session (`check_ins`). Checking in twice changes nothing and says
when the person arrived; a check-out ("left at") is optional and may be corrected. A check-in
is taken only on the session's day (conference time): a badge scanned for the wrong session
the day before is refused, not stored. Staff may undo a check-in made by mistake: the row
goes, and `check_in_undos` keeps what it was, who took it back, when and why.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.checkin_codes import (
    has_look_alike,
    is_signed_code,
    normalise_short_code,
    short_code,
    verify_checkin_code,
)
from orchestrator.attendance.models import CheckIn, CheckInUndo
from orchestrator.conferences.models import Conference, ConferenceSession, SessionStatus
from orchestrator.conferences.repository import session_by_key
from orchestrator.conferences.schemas import single_line
from orchestrator.errors import ConflictError, InvalidInputError, NotFoundError
from orchestrator.participants import repository as people
from orchestrator.participants.models import Person

log = logging.getLogger(__name__)

MAX_QUERY = 100
MAX_REASON = 1000
MAX_ACTOR = 200


class Method(StrEnum):
    QR = "qr"
    SEARCH = "search"


class InvalidCodeError(InvalidInputError):
    code = "invalid_code"


class UnknownPersonError(NotFoundError):
    code = "unknown_person"


class UnknownSessionError(NotFoundError):
    code = "unknown_session"


class SessionCancelledError(ConflictError):
    code = "session_cancelled"


class NotCheckedInError(ConflictError):
    code = "not_checked_in"


class LookAlikeError(InvalidInputError):
    code = "look_alike"


class WrongDayError(ConflictError):
    """A check-in on another day than the session's: `day` says when it takes place."""

    code = "wrong_day"

    def __init__(self, message: str, day: date) -> None:
        super().__init__(message)
        self.day = day


class InvalidLeaveTimeError(InvalidInputError):
    code = "invalid_left_at"


@dataclass(frozen=True)
class CheckInResult:
    """A person's check-in for a session; `already` when an earlier scan had recorded it."""

    person: Person
    session: ConferenceSession
    arrived_at: datetime
    left_at: datetime | None
    method: str
    already: bool = False


def session_for(conference: Conference, session_key: str) -> ConferenceSession:
    """A scheduled session of the conference by key; unknown or cancelled ones are refused."""
    try:
        found = session_by_key(conference, session_key)
    except NotFoundError:
        raise UnknownSessionError(f"Sitzung {session_key!r} gibt es nicht.") from None
    if found.status is SessionStatus.CANCELLED:
        raise SessionCancelledError(f"Die Sitzung {found.title!r} ist abgesagt.")
    return found


async def _person(session: AsyncSession, conference: Conference, person_id: uuid.UUID) -> Person:
    try:
        return await people.get(session, conference.id, person_id)
    except NotFoundError:
        raise UnknownPersonError("Diese Person ist für diese Konferenz nicht angemeldet.") from None


def session_day(conference: Conference, item: ConferenceSession) -> date:
    """The session's date in the conference's time zone."""
    return item.starts_at.astimezone(ZoneInfo(conference.timezone)).date()


def _on_its_day(conference: Conference, item: ConferenceSession, now: datetime) -> None:
    zone = ZoneInfo(conference.timezone)
    today = now.astimezone(zone).date()
    first, last = session_day(conference, item), item.ends_at.astimezone(zone).date()
    if not first <= today <= last:
        raise WrongDayError(f"Die Sitzung {item.title!r} ist am {first:%d.%m.%Y}.", first)


async def _find(session: AsyncSession, person_id: uuid.UUID, session_id: int) -> CheckIn | None:
    statement = select(CheckIn).where(
        CheckIn.person_id == person_id, CheckIn.session_id == session_id
    )
    return (await session.execute(statement)).scalar_one_or_none()


def _result(
    person: Person, item: ConferenceSession, row: CheckIn, *, already: bool
) -> CheckInResult:
    return CheckInResult(person, item, row.arrived_at, row.left_at, row.method, already)


async def _insert(session: AsyncSession, row: CheckIn) -> bool:
    """Insert the row; False when another scanner checked the person in a moment ago."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


async def check_in(
    session: AsyncSession,
    conference: Conference,
    person_id: uuid.UUID,
    session_key: str,
    method: str,
    now: datetime,
) -> CheckInResult:
    """Record that a person arrived at a session; a repeated check-in changes nothing."""
    kind = Method(method)
    item = session_for(conference, session_key)
    person = await _person(session, conference, person_id)
    existing = await _find(session, person.id, item.id)
    if existing is None:
        _on_its_day(conference, item, now)
        row = CheckIn(person_id=person.id, session_id=item.id, arrived_at=now, method=kind.value)
        if await _insert(session, row):
            log.info(
                "attendance.checked_in",
                extra={"person": str(person.id), "session": item.key, "method": kind.value},
            )
            return _result(person, item, row, already=False)
        existing = await _find(session, person.id, item.id)
        assert existing is not None
    return _result(person, item, existing, already=True)


async def check_in_by_code(
    session: AsyncSession,
    conference: Conference,
    secret: str,
    code: str,
    session_key: str,
    now: datetime,
) -> CheckInResult:
    """Check in the person a signed QR code or a typed short code names.

    Forged codes and codes of another conference's people are refused.
    """
    text = code[:200]
    if is_signed_code(text):
        person_id = verify_checkin_code(secret, text)
    else:
        person_id = await person_by_short_code(session, conference, secret, text)
    if person_id is None:
        raise InvalidCodeError("Dieser Code ist kein gültiger Check-in-Code.")
    return await check_in(session, conference, person_id, session_key, Method.QR, now)


async def person_by_short_code(
    session: AsyncSession, conference: Conference, secret: str, text: str
) -> uuid.UUID | None:
    """The conference's person whose short code this is (None: nobody, or two people).

    Short codes are derived, not stored: one HMAC per person of the conference (5,000 take
    a few milliseconds), so a code of another conference's person finds nobody here.
    """
    wanted = normalise_short_code(text)
    if wanted is None:
        if has_look_alike(text):
            raise LookAlikeError("Codes enthalten kein 0, O, 1, I oder L.")
        return None
    ids = await session.execute(select(Person.id).where(Person.conference_id == conference.id))
    found = [person_id for person_id in ids.scalars() if short_code(secret, person_id) == wanted]
    return found[0] if len(found) == 1 else None


async def check_out(
    session: AsyncSession,
    conference: Conference,
    person_id: uuid.UUID,
    session_key: str,
    now: datetime,
    left_at: datetime | None = None,
) -> CheckInResult:
    """Record when a checked-in person left (now, or an earlier time staff give)."""
    item = session_for(conference, session_key)
    person = await _person(session, conference, person_id)
    row = await _find(session, person.id, item.id)
    if row is None:
        raise NotCheckedInError("Diese Person ist für diese Sitzung nicht eingecheckt.")
    left = left_at or now
    if left < row.arrived_at or left > now:
        raise InvalidLeaveTimeError("Die Uhrzeit muss zwischen Ankunft und jetzt liegen.")
    row.left_at = left
    await session.flush()
    log.info("attendance.checked_out", extra={"person": str(person.id), "session": item.key})
    return _result(person, item, row, already=False)


def _text(field: str, value: str, limit: int) -> str:
    try:
        text = single_line(value)
    except ValueError as error:
        raise InvalidInputError(f"{field}: {error}") from None
    if len(text) > limit:
        raise InvalidInputError(f"{field}: höchstens {limit} Zeichen")
    return text


async def undo_check_in(
    session: AsyncSession,
    conference: Conference,
    person_id: uuid.UUID,
    session_key: str,
    actor: str,
    reason: str,
    now: datetime,
) -> CheckInResult:
    """Take a check-in back (scanned by mistake): remove it, keep who, when and why."""
    why, who = _text("reason", reason, MAX_REASON), _text("actor", actor, MAX_ACTOR)
    item = session_for(conference, session_key)
    person = await _person(session, conference, person_id)
    row = await _find(session, person.id, item.id)
    if row is None:
        raise NotCheckedInError("Diese Person ist für diese Sitzung nicht eingecheckt.")
    result = _result(person, item, row, already=False)
    session.add(
        CheckInUndo(
            person_id=person.id,
            session_id=item.id,
            arrived_at=row.arrived_at,
            left_at=row.left_at,
            method=row.method,
            reason=why,
            undone_by=who,
            undone_at=now,
        )
    )
    await session.delete(row)
    await session.flush()
    log.info("attendance.check_in_undone", extra={"person": str(person.id), "session": item.key})
    return result


async def undos(
    session: AsyncSession, person_id: uuid.UUID, session_id: int
) -> Sequence[CheckInUndo]:
    """The check-ins of a person at a session that staff took back, oldest first."""
    statement = (
        select(CheckInUndo)
        .where(CheckInUndo.person_id == person_id, CheckInUndo.session_id == session_id)
        .order_by(CheckInUndo.undone_at, CheckInUndo.id)
    )
    return (await session.execute(statement)).scalars().all()


async def search(
    session: AsyncSession, conference: Conference, query: str, limit: int = 20
) -> Sequence[Person]:
    """People whose name, email or organisation contains the query, ignoring case and accents."""
    text = query.strip()[:MAX_QUERY]
    if not text:
        return []
    found, _total = await people.page(session, conference.id, query=text, limit=limit)
    return found


async def arrivals(
    session: AsyncSession, item: ConferenceSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CheckIn]:
    """The check-ins of these people for a session, by person id."""
    if not person_ids:
        return {}
    statement = select(CheckIn).where(
        CheckIn.session_id == item.id, CheckIn.person_id.in_(person_ids)
    )
    return {row.person_id: row for row in (await session.execute(statement)).scalars()}


async def recent(
    session: AsyncSession, conference: Conference, session_key: str, limit: int = 20
) -> tuple[list[CheckInResult], int]:
    """The latest check-ins of a session (newest first) and how many there are in all."""
    item = session_by_key(conference, session_key)
    statement = (
        select(CheckIn, Person)
        .join(Person, Person.id == CheckIn.person_id)
        .where(CheckIn.session_id == item.id)
        .order_by(CheckIn.arrived_at.desc(), CheckIn.id.desc())
        .limit(limit)
    )
    rows = (await session.execute(statement)).all()
    total_statement = select(func.count()).where(CheckIn.session_id == item.id)
    total = (await session.execute(total_statement)).scalar_one()
    return [_result(person, item, row, already=True) for row, person in rows], total


def current_session(conference: Conference, now: datetime) -> ConferenceSession | None:
    """The session running now, else the next one today (conference time), else None."""
    scheduled = [s for s in conference.sessions if s.status is SessionStatus.SCHEDULED]
    running = [s for s in scheduled if s.starts_at <= now < s.ends_at]
    if running:
        return min(running, key=lambda s: s.starts_at)
    zone = ZoneInfo(conference.timezone)
    today = now.astimezone(zone).date()
    later = [
        s for s in scheduled if s.starts_at > now and s.starts_at.astimezone(zone).date() == today
    ]
    return min(later, key=lambda s: s.starts_at, default=None)
