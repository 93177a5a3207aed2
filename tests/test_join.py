"""Join links /j/{token}/{room} over real HTTP (uvicorn on loopback), SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import pytest_asyncio
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator.clock import FrozenClock
from orchestrator.conferences.models import Conference
from orchestrator.config import Settings
from orchestrator.participants.models import Person, Role
from orchestrator.rooms.joining import ClickRecorder, JoinDecision, JoinLookup
from orchestrator.rooms.models import JoinClick, JoinOutcome, Room, RoomState
from orchestrator.rooms.templates import load_templates
from orchestrator.web import pages
from orchestrator.web.app import create_app
from tests.live import serve
from tests.sample_world import LiveApp, World, add_person, berlin, sample_world, serve_frozen

TEMPLATES = load_templates()


class Live(LiveApp):
    async def join(self, person: Person | str, room: str, **kwargs: Any) -> httpx.Response:
        token = person if isinstance(person, str) else person.token
        return await self.client.get(f"/j/{token}/{room}", **kwargs)

    def claims(self, response: httpx.Response, room: str, template: str) -> dict[str, Any]:
        """Check the redirect to Jitsi and return the decoded JWT claims."""
        assert response.status_code == 302, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        target = urlsplit(response.headers["location"])
        base = urlsplit(self.settings.jitsi_base_url)
        assert (target.scheme, target.netloc) == (base.scheme, base.netloc)
        assert target.path == f"/{room}"
        assert target.fragment == TEMPLATES[template].fragment()
        query = parse_qs(target.query)
        assert list(query) == ["jwt"] and len(query["jwt"]) == 1
        token = query["jwt"][0]
        assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
        claims: dict[str, Any] = jwt.decode(
            token,
            self.settings.require("jitsi_app_secret"),
            algorithms=["HS256"],
            audience=self.settings.jitsi_app_id,
            issuer=self.settings.jitsi_app_id,
            options={"verify_exp": False, "verify_nbf": False},  # the frozen day is in 2027
        )
        assert claims["sub"] == self.settings.jitsi_domain
        assert claims["room"] == room
        return claims

    async def moderator(self, person: Person, room: str, template: str) -> str:
        """Join, check the redirect, and return the token's `context.user.moderator`."""
        return _user(self.claims(await self.join(person, room), room, template))["moderator"]


@pytest_asyncio.fixture
async def world(session: AsyncSession) -> World:
    specs = [
        ("anna", Role.PARTICIPANT, "sprache"),
        ("mo", Role.MODERATOR, "sprache"),
        ("rita", Role.REFERENT, "arbeit"),
        ("olga", Role.ORGANISER, None),
        ("device", Role.ROOM_SYSTEM, "sprache"),
        ("waiting", Role.PARTICIPANT, None),
        ("emma", Role.PARTICIPANT, "werte"),  # speaks English
        ("evil", Role.PARTICIPANT, "sprache"),  # a first name full of markup
    ]
    world = await sample_world(session, specs)
    await session.commit()
    return world


@pytest_asyncio.fixture
async def live(settings: Settings, world: World) -> AsyncIterator[Live]:
    clock = FrozenClock(berlin(11, 30))  # forums open; opening plenary over; results not yet
    async with serve_frozen(settings, clock) as client:
        yield Live(client, clock, settings)


def _user(claims: dict[str, Any]) -> dict[str, str]:
    """context.user without lobby_bypass, which must be the JSON true and only for moderators."""
    user: dict[str, Any] = dict(claims["context"]["user"])
    bypass = user.pop("lobby_bypass", None)
    assert bypass is None or (bypass is True and user["moderator"] == "true")
    assert all(isinstance(value, str) for value in user.values())
    return user


def _page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "Traceback" not in response.text
    return response.text


@pytest.mark.asyncio
async def test_participant_enters_own_forum(world: World, live: Live) -> None:
    anna = world.people["anna"]
    claims = live.claims(
        await live.join(anna, world.rooms["sprache"]), world.rooms["sprache"], "forum"
    )
    assert claims["iss"] == claims["aud"] == live.settings.jitsi_app_id
    assert claims["nbf"] == int(berlin(10, 45).timestamp())  # 11:00 less 15 minutes
    assert claims["exp"] == int(berlin(12, 45).timestamp())  # 12:30 plus 15 minutes
    assert _user(claims) == {
        "id": str(anna.id),
        "name": "Anna Muster",
        "email": "anna@example.org",
        "moderator": "false",
    }


@pytest.mark.asyncio
async def test_forum_moderator_moderates_own_forum_only(world: World, live: Live) -> None:
    people, rooms = world.people, world.rooms
    assert await live.moderator(people["mo"], rooms["sprache"], "forum") == "true"
    _page(await live.join(people["mo"], rooms["werte"]), 403)
    live.clock.set(berlin(10, 0))  # the opening plenary: organisers and referents moderate
    opening = rooms["opening"]
    claims = live.claims(await live.join(people["mo"], opening), opening, "plenary")
    assert _user(claims)["moderator"] == "false"
    assert claims["nbf"] == int(berlin(9, 0).timestamp())
    assert claims["exp"] == int(berlin(11, 0).timestamp())
    assert await live.moderator(people["rita"], opening, "plenary") == "true"
    assert await live.moderator(people["anna"], opening, "plenary") == "false"
    # The plenary has a lobby: its moderators skip it (token_lobby_bypass), nobody else does.
    rita = live.claims(await live.join(people["rita"], opening), opening, "plenary")
    assert rita["context"]["user"]["lobby_bypass"] is True
    assert "lobby_bypass" not in claims["context"]["user"]


@pytest.mark.asyncio
async def test_organiser_moderates_every_forum(world: World, live: Live) -> None:
    for forum in world.conference.forums:
        assert await live.moderator(world.people["olga"], world.rooms[forum.key], "forum") == "true"


@pytest.mark.asyncio
async def test_other_forum_is_refused_with_a_link_to_ones_own(world: World, live: Live) -> None:
    anna = world.people["anna"]
    text = _page(await live.join(anna, world.rooms["werte"]), 403)
    assert "Dieser Raum ist nicht für Sie vorgesehen" in text
    assert f'href="/j/{anna.token}/{world.rooms["sprache"]}"' in text
    assert "Sprache – Schlüssel zum Miteinander" in text


@pytest.mark.asyncio
async def test_too_early_names_the_opening_time(world: World, live: Live) -> None:
    anna = world.people["anna"]
    live.clock.set(berlin(10, 44))
    text = _page(await live.join(anna, world.rooms["sprache"]), 403)
    assert "noch nicht geöffnet" in text
    assert "um 10:45 Uhr (deutsche Zeit)" in text
    assert f'href="/p/{anna.token}"' in text
    live.clock.set(berlin(10, 45))
    live.claims(await live.join(anna, world.rooms["sprache"]), world.rooms["sprache"], "forum")


@pytest.mark.asyncio
async def test_too_late_and_results_too_early(world: World, live: Live) -> None:
    anna = world.people["anna"]
    text = _page(await live.join(anna, world.rooms["opening"]), 403)  # 11:30, closed at 11:00
    assert "Diese Sitzung ist vorbei" in text and "11:00" in text
    assert "12:45" in _page(await live.join(anna, world.rooms["results"]), 403)
    live.clock.set(berlin(12, 45))
    assert "vorbei" in _page(await live.join(anna, world.rooms["sprache"]), 403)


@pytest.mark.asyncio
@pytest.mark.parametrize("manual", [RoomState.CLOSED, RoomState.ENDED])
async def test_room_closed_by_hand(
    world: World, live: Live, session: AsyncSession, manual: RoomState
) -> None:
    room = world.rooms["sprache"]
    await session.execute(update(Room).where(Room.name == room).values(manual_state=manual))
    await session.commit()
    text = _page(await live.join(world.people["olga"], room), 403)
    assert "Dieser Raum ist geschlossen" in text
    assert 'href="mailto:ki@kreis-heinsberg.example.org"' in text


@pytest.mark.asyncio
async def test_unknown_and_tampered_tokens(world: World, live: Live) -> None:
    anna, room = world.people["anna"], world.rooms["sprache"]
    tampered = anna.token[:-1] + ("A" if anna.token[-1] != "A" else "B")
    for token in (secrets.token_urlsafe(32), tampered, anna.token.upper(), "1", "x" * 500):
        text = _page(await live.join(token, room), 404)
        assert "Dieser Link ist ungültig" in text
        assert "/p/" not in text
    assert (await live.join(anna, room)).status_code == 302


@pytest.mark.asyncio
async def test_unknown_room_with_a_valid_token(world: World, live: Live) -> None:
    anna = world.people["anna"]
    for room in ("sprache-00000000000000000000", "no_such_room", "x" * 200):
        text = _page(await live.join(anna, room), 404)
        assert "Raum nicht gefunden" in text and f'href="/p/{anna.token}"' in text


@pytest.mark.asyncio
async def test_waiting_list_keeps_forums_closed_but_not_the_plenary(
    world: World, live: Live
) -> None:
    waiting = world.people["waiting"]
    text = _page(await live.join(waiting, world.rooms["sprache"]), 403)
    assert "Warteliste" in text and f"/j/{waiting.token}/" not in text
    live.clock.set(berlin(13, 0))
    assert await live.moderator(waiting, world.rooms["results"], "plenary") == "false"


@pytest.mark.asyncio
async def test_room_system_joins_with_its_own_template(world: World, live: Live) -> None:
    room = world.rooms["sprache"]
    live.clock.set(berlin(10, 30))  # 30 minutes early: its template's lead, not the forum's
    claims = live.claims(await live.join(world.people["device"], room), room, "hybrid-room-system")
    assert _user(claims)["moderator"] == "true"
    assert claims["context"]["user"]["lobby_bypass"] is True
    assert claims["nbf"] == int(berlin(10, 30).timestamp())
    assert claims["exp"] == int(berlin(13, 0).timestamp())


@pytest.mark.asyncio
async def test_english_page_for_english_speakers(world: World, live: Live) -> None:
    emma = world.people["emma"]
    text = _page(await live.join(emma, world.rooms["sprache"]), 403)
    assert '<html lang="en">' in text and "This room is not yours" in text
    asked = _page(await live.join("nope", "x", headers={"Accept-Language": "en-GB,de;q=0.5"}), 404)
    assert "This link is not valid" in asked
    assert "Dieser Link" in _page(
        await live.join("nope", "x", headers={"Accept-Language": "fr"}), 404
    )
    assert "not valid" in _page(await live.join("nope", "x", params={"lang": "en"}), 404)


@pytest.mark.asyncio
async def test_names_are_escaped_on_the_page(world: World, live: Live) -> None:
    evil = world.people["evil"]
    live.clock.set(berlin(9, 0))
    text = _page(await live.join(evil, world.rooms["sprache"]), 403)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>" not in text


@pytest.mark.asyncio
async def test_clicks_are_recorded_with_their_outcome(
    settings: Settings, world: World, session: AsyncSession
) -> None:
    anna, mo = world.people["anna"], world.people["mo"]
    clock = FrozenClock(berlin(11, 30))
    async with (
        serve(create_app(settings, clock=clock)) as base_url,
        httpx.AsyncClient(base_url=base_url, follow_redirects=False) as client,
    ):
        for token, room in [
            (anna.token, "sprache"),
            (mo.token, "sprache"),
            (anna.token, "werte"),
            (anna.token, "results"),
            (anna.token, "opening"),
            ("unknown-token-0000000000000000000000000", "sprache"),
        ]:
            await client.get(f"/j/{token}/{world.rooms[room]}")
    # The server has stopped: the recorder wrote everything it had accepted.
    rows = (await session.scalars(select(JoinClick).order_by(JoinClick.id))).all()
    by_room = {name: key for key, name in world.rooms.items()}
    room_names = {id_: name for id_, name in await session.execute(select(Room.id, Room.name))}
    seen = [(r.person_id, by_room[room_names[r.room_id]], r.outcome, r.moderator) for r in rows]
    assert seen == [
        (anna.id, "sprache", JoinOutcome.REDIRECTED, False),
        (mo.id, "sprache", JoinOutcome.REDIRECTED, True),
        (anna.id, "werte", JoinOutcome.NOT_ALLOWED, False),
        (anna.id, "results", JoinOutcome.TOO_EARLY, False),
        (anna.id, "opening", JoinOutcome.TOO_LATE, False),
    ]
    assert all(r.clicked_at == berlin(11, 30) for r in rows)


@pytest.mark.asyncio
async def test_room_of_another_conference_is_not_found(
    world: World, live: Live, session: AsyncSession
) -> None:
    other = Conference(slug=f"other-{uuid.uuid4().hex[:6]}", title="Andere", sessions=[])
    session.add(other)
    await session.flush()
    stranger = await add_person(session, other, "stranger", Role.ORGANISER)
    await session.commit()
    _page(await live.join(stranger, world.rooms["sprache"]), 404)


@pytest.mark.asyncio
async def test_concurrent_clicks_share_one_lookup(
    world: World, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    statements: list[str] = []
    event.listen(
        engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    people, room = list(world.people.values()), world.rooms["sprache"]
    lookup = JoinLookup(sessions)
    clicks = [lookup.find(person.token, room) for person in people]
    found = await asyncio.gather(*clicks, lookup.find(secrets.token_urlsafe(32), room))
    assert [p.id if p else None for p, _ in found] == [p.id for p in people] + [None]
    assert all(r is not None and r.name == room for _, r in found)
    assert sum("FROM people" in text for text in statements) == 1
    assert sum("FROM rooms" in text for text in statements) == 1


@pytest.mark.asyncio
async def test_recorder_keeps_clicks_whose_person_still_exists(
    world: World, session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    anna, mo = world.people["anna"], world.people["mo"]
    room = await session.scalar(select(Room).where(Room.name == world.rooms["sprache"]))
    recorder = ClickRecorder(sessions, interval=60)  # nothing is written before the stop
    async with recorder.running():
        for person in (anna, mo):
            await recorder.record(JoinDecision(person, room), berlin(11, 0))
        await session.execute(delete(Person).where(Person.id == mo.id))
        await session.commit()
    assert (await session.scalars(select(JoinClick.person_id))).all() == [anna.id]


@pytest.mark.asyncio
async def test_stylesheet_is_served(world: World, live: Live) -> None:
    response = await live.client.get("/static/site.css")
    assert response.status_code == 200 and "skip-link" in response.text


def test_every_page_message_has_a_german_translation() -> None:
    found = extract_from_dir(str(pages.TEMPLATES_DIR), [("**.html", "jinja2")])
    extracted = {message[2] for message in found if isinstance(message[2], str)}
    with (pages.LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        german = read_po(handle, locale="de")
    # An entry with a German text (which may equal the English one: "Name", "Team").
    missing = [text for text in extracted if not (german.get(text) and german[text].string)]
    assert extracted and not missing


def test_accept_language_order_and_weights() -> None:
    assert pages.from_accept_language("de-DE,de;q=0.9,en;q=0.8") == "de"
    assert pages.from_accept_language("fr, en;q=0.7, de;q=0.5") == "en"
    assert pages.from_accept_language("en;q=0, de") == "de"
    assert pages.from_accept_language("fr") is None
