"""Creating and updating conference editions from their spec (TOML file or API)."""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences import cancelling, repository
from orchestrator.conferences.models import (
    Conference,
    ConferenceSession,
    Forum,
    SessionKind,
    SessionStatus,
)
from orchestrator.conferences.schemas import (
    ConferenceInfo,
    ConferenceOut,
    ConferencePatch,
    ConferenceSpec,
    ForumOut,
    ForumSpec,
    SessionOut,
    SessionSpec,
)
from orchestrator.errors import ConflictError, InvalidInputError
from orchestrator.participants.models import Assignment, ForumChoice
from orchestrator.rooms.models import Room, RoomKind


@dataclass
class ImportOutcome:
    conference: Conference
    created: bool
    changes: list[str] = field(default_factory=list)


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(Datei)"
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


def parse_spec_bytes(data: bytes, name: str | None) -> ConferenceSpec:
    """Validate an uploaded conference TOML file; errors name the file and the field."""
    label = name or "Datei"
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidInputError(f"{label}: kein gültiges TOML ({error}).") from None
    try:
        return ConferenceSpec.model_validate(parsed)
    except ValidationError as error:
        raise InvalidInputError(f"{label}: {describe_validation_error(error)}") from None


def parse_spec_file(path: Path) -> ConferenceSpec:
    """Read and validate a conference TOML file; errors name the file and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"Datei {path} nicht gefunden.") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidInputError(f"{path}: kein gültiges TOML ({error}).") from None
    try:
        return ConferenceSpec.model_validate(data)
    except ValidationError as error:
        raise InvalidInputError(f"{path}: {describe_validation_error(error)}") from None


def _aware(spec: SessionSpec, info: ConferenceInfo) -> tuple[datetime, datetime]:
    zone = ZoneInfo(info.timezone)
    day = spec.date or info.date
    return (
        datetime.combine(day, spec.start, tzinfo=zone),
        datetime.combine(day, spec.end, tzinfo=zone),
    )


def _apply_info(conference: Conference, info: ConferenceInfo) -> None:
    conference.title = info.title
    conference.lead_theme = info.lead_theme
    conference.organiser = info.organiser
    conference.organiser_with_article = info.organiser_with_article
    conference.organiser_email = str(info.organiser_email or "")
    conference.timezone = info.timezone
    conference.venue = info.venue
    conference.mode = info.mode
    conference.status = info.status
    conference.retention_days = info.retention_days
    conference.reminder_offsets = list(info.reminders)


def _apply_session(item: ConferenceSession, spec: SessionSpec, info: ConferenceInfo) -> bool:
    """Copy the spec onto the row; True if time or kind changed (calendar update needed)."""
    starts_at, ends_at = _aware(spec, info)
    moved = item.starts_at != starts_at or item.ends_at != ends_at
    item.kind, item.title = spec.kind, spec.title
    item.starts_at, item.ends_at = starts_at, ends_at
    return moved


def plenary_room(item: ConferenceSession) -> Room | None:
    return next((room for room in item.rooms if room.kind is RoomKind.PLENARY), None)


def _sync_plenary_room(conference: Conference, item: ConferenceSession, spec: SessionSpec) -> None:
    """A plenary session has its own room; a breakout round has none (its forums do)."""
    room = plenary_room(item)
    if spec.kind is not SessionKind.PLENARY:
        if room is not None:
            conference.rooms.remove(room)
            item.rooms.remove(room)
        return
    if room is None:
        room = Room(kind=RoomKind.PLENARY, name_hint=spec.key, template=spec.room_template)
        # Append through the owning collections: SQLAlchemy 2 does not cascade along backrefs.
        conference.rooms.append(room)
        item.rooms.append(room)
    room.template = spec.room_template


def _sync_forum_room(conference: Conference, forum: Forum) -> None:
    if forum.room is None:
        room = Room(kind=RoomKind.FORUM, name_hint=forum.key, template=forum.room_template)
        conference.rooms.append(room)
        forum.room = room
    forum.room.template = forum.room_template
    forum.room.session = forum.session


def _apply_forum(
    forum: Forum, spec: ForumSpec, position: int, rounds: dict[str, ConferenceSession]
) -> None:
    forum.title = spec.title
    forum.description = spec.description
    forum.capacity = spec.capacity
    forum.in_person_room = spec.in_person_room
    forum.room_template = spec.room_template
    forum.invited_experts = list(spec.invited_experts)
    forum.position = position
    forum.session = rounds[spec.session] if spec.session else next(iter(rounds.values()))


async def _forum_in_use(session: AsyncSession, forum: Forum) -> bool:
    used = select(
        exists().where(Assignment.forum_id == forum.id)
        | exists().where(ForumChoice.forum_id == forum.id)
    )
    return bool((await session.execute(used)).scalar())


async def _sync_sessions(
    session: AsyncSession, conference: Conference, spec: ConferenceSpec, changes: list[str]
) -> None:
    existing = {item.key: item for item in conference.sessions}
    for item_spec in spec.sessions:
        item = existing.pop(item_spec.key, None)
        if item is None:
            item = ConferenceSession(key=item_spec.key, sequence=0, rooms=[])
            conference.sessions.append(item)
            _apply_session(item, item_spec, spec.conference)
            changes.append(f"Sitzung {item_spec.key} angelegt")
        else:
            _update_session(item, item_spec, spec.conference, changes)
        _sync_plenary_room(conference, item, item_spec)
    for key, item in existing.items():
        if any(
            forum.session is item
            for forum in conference.forums
            if forum.key in {f.key for f in spec.forums}
        ):
            raise ConflictError(f"Sitzung {key!r} fehlt in der Datei, hat aber noch Foren.")
        await _drop_session(session, conference, item, changes)
    await session.flush()


def _update_session(
    item: ConferenceSession, spec: SessionSpec, info: ConferenceInfo, changes: list[str]
) -> None:
    """A session still in the file: scheduled again if it was cancelled, else moved if its
    times changed; one SEQUENCE step either way."""
    moved = _apply_session(item, spec, info)
    if cancelling.reinstate(item):
        changes.append(f"Sitzung {spec.key} wieder angesetzt")
    elif moved:
        item.sequence += 1
        changes.append(f"Sitzung {spec.key} verschoben")


async def _drop_session(
    session: AsyncSession, conference: Conference, item: ConferenceSession, changes: list[str]
) -> None:
    """Missing from the file: cancelled if it ever reached a calendar, else deleted."""
    if await cancelling.ever_in_calendars(session, item):
        if cancelling.cancel(item):
            changes.append(f"Sitzung {item.key} abgesagt")
        return
    if (room := plenary_room(item)) is not None:
        conference.rooms.remove(room)
    conference.sessions.remove(item)
    changes.append(f"Sitzung {item.key} entfernt")


async def _sync_forums(
    session: AsyncSession, conference: Conference, spec: ConferenceSpec, changes: list[str]
) -> None:
    rounds = {  # a round kept only as cancelled takes no forums
        item.key: item
        for item in conference.sessions
        if item.kind is SessionKind.BREAKOUT_ROUND and item.status is SessionStatus.SCHEDULED
    }
    existing = {forum.key: forum for forum in conference.forums}
    for position, forum_spec in enumerate(spec.forums):
        forum = existing.pop(forum_spec.key, None)
        if forum is None:
            forum = Forum(key=forum_spec.key)
            conference.forums.append(forum)
            changes.append(f"Forum {forum_spec.key} angelegt")
        _apply_forum(forum, forum_spec, position, rounds)
        _sync_forum_room(conference, forum)
    for key, forum in existing.items():
        if await _forum_in_use(session, forum):
            raise ConflictError(
                f"Forum {key!r} fehlt in der Datei, hat aber Zuteilungen oder Wünsche; "
                f"zuerst die Teilnehmenden umbuchen."
            )
        conference.forums.remove(forum)
        changes.append(f"Forum {key} entfernt")


def check_templates(spec: ConferenceSpec, known: Collection[str]) -> None:
    """Every room template the spec names must exist (room_templates/)."""
    named = [(f"forums.{f.key}", f.room_template) for f in spec.forums] + [
        (f"sessions.{s.key}", s.room_template)
        for s in spec.sessions
        if s.kind is SessionKind.PLENARY
    ]
    for where, template in named:
        if template not in known:
            raise InvalidInputError(f"{where}.room_template: keine Raumvorlage {template!r}")


async def import_spec(
    session: AsyncSession, spec: ConferenceSpec, templates: Collection[str] | None = None
) -> ImportOutcome:
    """Create the edition or update it in place (matched by slug, sessions and forums by key)."""
    if templates is not None:
        check_templates(spec, templates)
    conference = await repository.find_by_slug(session, spec.conference.slug)
    created = conference is None
    if conference is None:
        conference = Conference(slug=spec.conference.slug, sessions=[], forums=[], rooms=[])
        session.add(conference)
    outcome = ImportOutcome(conference=conference, created=created)
    _apply_info(conference, spec.conference)
    await _sync_sessions(session, conference, spec, outcome.changes)
    await _sync_forums(session, conference, spec, outcome.changes)
    await session.flush()
    return outcome


async def import_file(
    session: AsyncSession, path: Path, templates: Collection[str] | None = None
) -> ImportOutcome:
    """`orchestrator conference import FILE.toml`: idempotent create-or-update."""
    return await import_spec(session, parse_spec_file(path), templates)


async def update(session: AsyncSession, slug: str, patch: ConferencePatch) -> Conference:
    """Change an edition's own fields (not its programme)."""
    conference = await repository.get_by_slug(session, slug)
    values = patch.model_dump(exclude_unset=True)
    if "reminders" in values:
        conference.reminder_offsets = list(values.pop("reminders") or [])
    if "organiser_email" in values:
        conference.organiser_email = str(values.pop("organiser_email") or "")
    for name, value in values.items():
        if value is None:
            raise InvalidInputError(f"{name}: darf nicht leer sein")
        setattr(conference, name, value)
    await session.flush()
    return conference


async def delete(session: AsyncSession, slug: str) -> None:
    """Remove an edition and everything in it."""
    conference = await repository.get_by_slug(session, slug)
    await session.delete(conference)
    await session.flush()


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


def session_out(item: ConferenceSession, zone: ZoneInfo) -> SessionOut:
    return SessionOut(
        key=item.key,
        kind=item.kind,
        title=item.title,
        starts_at=_local(item.starts_at, zone),
        ends_at=_local(item.ends_at, zone),
        status=item.status.value,
        room=room.name if (room := plenary_room(item)) else None,
        sequence=item.sequence,
    )


def forum_out(forum: Forum, assigned: int | None = None) -> ForumOut:
    return ForumOut(
        key=forum.key,
        title=forum.title,
        description=forum.description,
        capacity=forum.capacity,
        in_person_room=forum.in_person_room,
        room_template=forum.room_template,
        room=forum.room.name if forum.room else "",
        session=forum.session.key if forum.session else None,
        invited_experts=list(forum.invited_experts),
        assigned=assigned,
    )


def to_out(conference: Conference, fill: dict[int, int] | None = None) -> ConferenceOut:
    """The API's view of an edition: times in its own zone, forums with their rooms."""
    zone = ZoneInfo(conference.timezone)
    return ConferenceOut(
        slug=conference.slug,
        title=conference.title,
        lead_theme=conference.lead_theme,
        organiser=conference.organiser,
        organiser_with_article=conference.organiser_with_article,
        organiser_email=conference.organiser_email,
        timezone=conference.timezone,
        venue=conference.venue,
        mode=conference.mode,
        status=conference.status,
        retention_days=conference.retention_days,
        reminders=list(conference.reminder_offsets),
        sessions=[session_out(item, zone) for item in conference.sessions],
        forums=[
            forum_out(forum, None if fill is None else fill.get(forum.id, 0))
            for forum in conference.forums
        ],
    )
