"""Conference import from TOML: validation, idempotence, updates in place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.conferences import repository
from orchestrator.conferences.models import ConferenceSession, Forum
from orchestrator.conferences.service import (
    check_templates,
    import_file,
    parse_spec_file,
    plenary_room,
)
from orchestrator.errors import ConflictError, InvalidInputError
from orchestrator.participants.models import ForumChoice, Person
from tests.conftest import SAMPLE_TOML, load_sample

pytestmark = pytest.mark.asyncio


async def _count(session: AsyncSession, model: type[object]) -> int:
    return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_sample_conference_is_imported_in_its_time_zone(session: AsyncSession) -> None:
    conference = await load_sample(session)
    assert conference.slug == "ik-heinsberg-2027"
    assert conference.reminder_offsets == ["P7D", "P1D", "PT15M"]
    opening = repository.session_by_key(conference, "opening")
    # 09:30 in Berlin in March (CET, UTC+1) is 08:30 UTC.
    assert opening.starts_at == datetime(2027, 3, 18, 8, 30, tzinfo=UTC)
    opening_room = plenary_room(opening)
    assert opening_room is not None and opening_room.name.startswith("opening-")
    assert opening_room.template == "plenary"
    assert plenary_room(repository.session_by_key(conference, "forums")) is None
    assert len(conference.rooms) == 2 + 5  # two plenaries, five forums
    arbeit = repository.forum_by_key(conference, "arbeit")
    assert arbeit.capacity == 50 and len(arbeit.invited_experts) == 4
    assert arbeit.session is not None and arbeit.session.key == "forums"


async def test_import_twice_updates_never_duplicates(session: AsyncSession) -> None:
    first = await load_sample(session)
    rooms = {forum.key: forum.room.name for forum in first.forums if forum.room}
    await load_sample(session)
    assert await _count(session, Forum) == 5
    assert await _count(session, ConferenceSession) == 3
    again = await repository.get_by_slug(session, "ik-heinsberg-2027")
    assert {forum.key: forum.room.name for forum in again.forums if forum.room} == rooms
    assert len(rooms) == 5 and len(again.rooms) == 7  # stable, never duplicated
    assert all(item.sequence == 0 for item in again.sessions)


async def test_moving_a_session_raises_its_sequence(session: AsyncSession, tmp_path: Path) -> None:
    await load_sample(session)
    moved = tmp_path / "moved.toml"
    moved.write_text(
        SAMPLE_TOML.read_text(encoding="utf-8").replace('start = "11:00"', 'start = "11:15"'),
        encoding="utf-8",
    )
    outcome = await import_file(session, moved)
    await session.commit()
    assert "Sitzung forums verschoben" in outcome.changes
    conference = await repository.get_by_slug(session, "ik-heinsberg-2027")
    forums_round = repository.session_by_key(conference, "forums")
    assert forums_round.sequence == 1
    assert forums_round.starts_at == datetime(2027, 3, 18, 10, 15, tzinfo=UTC)


async def test_forum_removed_from_file_is_refused_when_people_chose_it(
    session: AsyncSession, tmp_path: Path
) -> None:
    conference = await load_sample(session)
    werte = repository.forum_by_key(conference, "werte")
    session.add(
        Person(
            conference_id=conference.id,
            email="a@example.org",
            choices=[ForumChoice(forum_id=werte.id, rank=1)],
        )
    )
    await session.commit()
    text = SAMPLE_TOML.read_text(encoding="utf-8")
    start = text.index('[[forums]]\nkey = "werte"')
    end = text.index("[[forums]]", start + 5)
    shorter = tmp_path / "shorter.toml"
    shorter.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(ConflictError, match="werte"):
        await import_file(session, shorter)
    await session.rollback()
    assert await _count(session, Forum) == 5


@pytest.mark.parametrize(
    ("needle", "replacement", "field"),
    [
        ('timezone = "Europe/Berlin"', 'timezone = "Europe/Heinsberg"', "conference.timezone"),
        ('slug = "ik-heinsberg-2027"', 'slug = "IK Heinsberg"', "conference.slug"),
        ('end = "10:45"', 'end = "09:00"', "sessions.0"),
        ("capacity = 40", "capacity = -1", "forums.0.capacity"),
        ('title = "Foren"', 'title = "Foren\\r\\nX"', "sessions.1.title"),
        ('key = "werte"', 'key = "sprache"', "forums"),
    ],
)
async def test_invalid_files_name_the_field(
    session: AsyncSession, tmp_path: Path, needle: str, replacement: str, field: str
) -> None:
    text = SAMPLE_TOML.read_text(encoding="utf-8")
    assert needle in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(needle, replacement, 1), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
        await import_file(session, bad)
    assert await _count(session, Forum) == 0


async def test_unknown_room_template_is_refused(tmp_path: Path) -> None:
    spec = parse_spec_file(SAMPLE_TOML)
    check_templates(spec, {"plenary", "forum"})
    bad = spec.model_copy(
        update={"forums": [spec.forums[0].model_copy(update={"room_template": "kino"})]}
    )
    with pytest.raises(InvalidInputError, match=r"forums\.sprache\.room_template"):
        check_templates(bad, {"plenary", "forum"})


async def test_not_toml_is_a_clear_error(session: AsyncSession, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[conference")
    with pytest.raises(InvalidInputError, match="kein gültiges TOML"):
        await import_file(session, bad)
