"""Retention ends a conference's attendance data; erasure ends a person's presence too."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.attendance.models import (
    AttendanceOverride,
    CheckIn,
    JitsiEvent,
    PresenceInterval,
)
from orchestrator.attendance.overrides import override
from orchestrator.attendance.retention import apply_retention, erase_person, retention_ends
from orchestrator.conferences.models import Conference, ConferenceSession, SessionKind
from orchestrator.conferences.repository import session_by_key
from orchestrator.participants.models import Assignment, Person
from tests.test_attendance import add_person, add_stay, at, room_of, sample


def raw_event(
    room_name: str, name: str, occupant_id: str | None, payload: dict[str, Any]
) -> JitsiEvent:
    body = {"event_name": name, "room_name": room_name, **payload}
    return JitsiEvent(
        digest=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
        event_name=name,
        room_name=room_name,
        occupant_id=occupant_id,
        payload=body,
    )


async def count(session: AsyncSession, model: type[Any], *where: Any) -> int:
    return (
        await session.execute(select(func.count()).select_from(model).where(*where))
    ).scalar_one()


async def filled(session: AsyncSession) -> tuple[Conference, Person, Person]:
    """The sample conference with two people's presence, a check-in, an override, raw events."""
    conference = await sample(session)
    anna = await add_person(
        session, conference, "Anna", "Müller", forum="sprache", organisation="VHS"
    )
    ben = await add_person(session, conference, "Ben", "Becker", forum="sprache")
    room = room_of(conference, "sprache")
    for person in (anna, ben):
        add_stay(session, conference, person, "sprache", at(11), at(12))
        session.add(
            raw_event(
                room.name,
                "muc-occupant-joined",
                str(person.id),
                {
                    "occupant": {
                        "id": str(person.id),
                        "name": person.display_name,
                        "email": person.email,
                    }
                },
            )
        )
    add_stay(session, conference, None, "sprache", at(11), at(11, 30))
    occupants = [{"id": str(p.id), "name": p.display_name, "email": p.email} for p in (anna, ben)]
    session.add(raw_event(room.name, "muc-room-destroyed", None, {"all_occupants": occupants}))
    opening = session_by_key(conference, "opening")
    session.add(CheckIn(person_id=anna.id, session_id=opening.id, arrived_at=at(9, 25)))
    await override(session, ben.id, opening.id, "excused", "Dienstreise", "Orga")
    await session.commit()
    return conference, anna, ben


async def other_conference(session: AsyncSession) -> Person:
    """A later edition with one person and one interval, still within its retention."""
    later = Conference(slug="ik-2028", title="Integrationskonferenz 2028", retention_days=30)
    later.sessions.append(
        ConferenceSession(
            key="opening",
            kind=SessionKind.PLENARY,
            title="Begrüßung",
            starts_at=at(9) + timedelta(days=365),
            ends_at=at(10) + timedelta(days=365),
        )
    )
    session.add(later)
    await session.flush()
    person = Person(conference_id=later.id, email="keep@example.org", first_name="Bleibt")
    session.add(person)
    await session.flush()
    session.add(
        PresenceInterval(
            conference_id=later.id,
            room_name="other-room",
            person_id=person.id,
            occupant_key=str(person.id),
            joined_at=at(9) + timedelta(days=365),
            left_at=None,
        )
    )
    await session.commit()
    return person


@pytest.mark.asyncio
async def test_retention_waits_for_its_period_then_clears_and_anonymises(
    session: AsyncSession,
) -> None:
    conference, anna, _ben = await filled(session)
    anna_id, anna_token = anna.id, anna.token
    keeper = await other_conference(session)
    keeper_id = keeper.id
    ends = retention_ends(conference)
    assert ends == at(14) + timedelta(days=365)

    before = await apply_retention(session, ends - timedelta(minutes=1))
    await session.commit()
    assert before.conferences == [] and not before.changed
    assert await count(session, PresenceInterval) == 4

    after = await apply_retention(session, ends + timedelta(minutes=1))
    await session.commit()
    assert after.as_dict() == {
        "conferences": [conference.slug],
        "intervals": 3,  # two people's and an anonymous one
        "check_ins": 1,
        "overrides": 1,
        "events": 3,
        "people": 2,
    }
    assert await count(session, PresenceInterval) == 1  # the later edition's
    assert await count(session, CheckIn) == 0
    assert await count(session, AttendanceOverride) == 0
    assert await count(session, JitsiEvent) == 0

    conference_id = conference.id
    session.expire_all()
    people = (
        (await session.execute(select(Person).where(Person.conference_id == conference_id)))
        .scalars()
        .all()
    )
    assert {(p.first_name, p.last_name, p.organisation) for p in people} == {("gelöscht", "", "")}
    assert all(p.email.endswith("@example.invalid") for p in people)
    assert len({p.email for p in people}) == 2
    erased = next(p for p in people if p.id == anna_id)
    assert erased.token != anna_token
    assert await count(session, Assignment) == 2  # forum fill still countable
    kept = await session.get(Person, keeper_id)
    assert kept is not None and kept.first_name == "Bleibt"

    again = await apply_retention(session, ends + timedelta(days=1))
    assert not again.changed and again.people == 0


@pytest.mark.asyncio
async def test_erase_person_removes_presence_and_raw_events(session: AsyncSession) -> None:
    _conference, anna, ben = await filled(session)
    anna_id, anna_email, ben_id = anna.id, anna.email, ben.id
    await erase_person(session, anna)
    await session.commit()
    session.expire_all()
    assert await session.get(Person, anna_id) is None
    assert await count(session, PresenceInterval, PresenceInterval.person_id == anna_id) == 0
    assert await count(session, PresenceInterval, PresenceInterval.person_id == ben_id) == 1
    assert await count(session, CheckIn) == 0
    assert await count(session, AttendanceOverride) == 1  # Ben's
    assert await count(session, JitsiEvent, JitsiEvent.occupant_id == str(anna_id)) == 0
    assert await count(session, JitsiEvent, JitsiEvent.occupant_id == str(ben_id)) == 1
    destroyed = (
        await session.execute(select(JitsiEvent).where(JitsiEvent.occupant_id.is_(None)))
    ).scalar_one()
    text = json.dumps(destroyed.payload, ensure_ascii=False)
    assert "Anna" not in text and anna_email not in text and str(anna_id) not in text
    assert [o["name"] for o in destroyed.payload["all_occupants"]] == ["Ben Becker"]
