"""Every staff route × every kind of caller: who gets past the door and who does not.

The routes are read from the app itself, so a new page or API route is walked too. Callers:
anonymous, a participant (their personal token as a bearer), check-in staff, a moderator of
another forum, a moderator, an organiser of another conference, the conference's organiser
(of this conference only), and that organiser's personal API token. GET answers show who is
let in; state-changing requests are sent only by callers who must be refused (and then change
nothing) and by the organiser without a CSRF token (refused too).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffRole
from orchestrator.clock import FrozenClock
from orchestrator.conferences import service as conferences
from orchestrator.config import Settings
from orchestrator.mail.models import OutboxMessage
from orchestrator.participants.models import Person
from orchestrator.web.app import create_app
from tests.conftest import SAMPLE_TOML, load_sample
from tests.live import serve
from tests.staff_helpers import NOW, PASSWORD, add_staff
from tests.test_staff_login import SLUG, berlin, csrf_of

OTHER = "other-2027"
CALLERS = (
    "anonymous",
    "participant",
    "checkin",
    "moderator_elsewhere",
    "moderator",
    "organiser_elsewhere",
    "organiser",
    "api_token",
)
EMAILS = {
    "checkin": "einlass@example.org",
    "moderator_elsewhere": "werte@example.org",
    "moderator": "sprache@example.org",
    "organiser_elsewhere": "andere@example.org",
    "organiser": "orga-slug@example.org",
}
PUBLIC = re.compile(r"^/admin/(login|logout|password)")


@dataclass
class Callers:
    base: str
    cookies: dict[str, httpx.Cookies] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    bearer: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    def client(self, caller: str) -> httpx.AsyncClient:
        headers = {"Accept": "text/html"}
        if caller in self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer[caller]}"
        return httpx.AsyncClient(
            base_url=self.base, cookies=self.cookies.get(caller), headers=headers, timeout=30
        )


def allowed(caller: str, path: str, method: str) -> bool:
    """The rule the product promises (README, issue 11), written independently of the code."""
    staff = caller in EMAILS
    if path.startswith("/api/v1"):
        if path == "/api/v1/conferences" and method == "GET":
            return staff or caller == "api_token"  # each caller sees their own conferences
        if caller not in ("organiser", "api_token"):
            return False
        # The conference's own paths, and its rooms (the walk's room is one of SLUG's).
        return path.startswith((f"/api/v1/conferences/{SLUG}", "/api/v1/rooms/"))
    if caller in ("anonymous", "participant", "api_token"):
        return False  # pages need a staff session; a bearer is for the API
    if path in ("/admin", "/admin/account") or path.startswith("/admin/account/"):
        return staff
    if path == "/admin/new":
        return caller in ("organiser", "organiser_elsewhere")
    if path.startswith("/admin/mail"):
        return False  # the test mailbox spans every conference: organisers of all only
    if path.startswith(f"/admin/{SLUG}/checkin"):
        return caller in ("organiser", "checkin")
    if path.startswith(f"/admin/{SLUG}"):
        return caller == "organiser"
    return False


def _refused(response: httpx.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 303 and response.headers["location"].startswith("/admin/login")


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


@pytest_asyncio.fixture
async def callers(settings: Settings, session: AsyncSession) -> AsyncIterator[Callers]:
    conference = await load_sample(session)
    sample = conferences.parse_spec_file(SAMPLE_TOML)
    info = sample.conference.model_copy(update={"slug": OTHER})
    await conferences.import_spec(session, sample.model_copy(update={"conference": info}))
    person = Person(conference_id=conference.id, email="anna@example.org", first_name="Anna")
    session.add(person)
    await session.commit()
    await add_staff(session, EMAILS["checkin"], StaffRole.CHECKIN, conference=SLUG)
    moderator = EMAILS["moderator_elsewhere"]
    await add_staff(session, moderator, StaffRole.MODERATOR, conference=SLUG, forum="werte")
    await add_staff(
        session, EMAILS["moderator"], StaffRole.MODERATOR, conference=SLUG, forum="sprache"
    )
    await add_staff(session, EMAILS["organiser_elsewhere"], StaffRole.ORGANISER, conference=OTHER)
    await add_staff(session, EMAILS["organiser"], StaffRole.ORGANISER, conference=SLUG)
    owner = await accounts.find_user(session, EMAILS["organiser"])
    assert owner is not None
    token = await accounts.make_api_token(session, owner, "matrix", NOW)
    await session.commit()
    room = conference.forums[0].room
    assert room is not None
    values = {
        "slug": SLUG,
        "person_id": str(person.id),
        "person": str(person.id),
        "id": str(person.id),
        "key": "forums",
        "room_id": str(room.id),
        "name": "unknown.eml",
        "grant_id": "999999",
        "token_id": "999999",
    }
    async with serve(create_app(settings, FrozenClock(berlin(9, 12)))) as base:
        found = Callers(base, values=values)
        found.bearer = {"participant": person.token, "api_token": token}
        for caller, email in EMAILS.items():
            async with httpx.AsyncClient(base_url=base) as browser:
                form = await browser.get("/admin/login")
                data = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(form.text)}
                assert (await browser.post("/admin/login", data=data)).status_code == 303
                found.csrf[caller] = csrf_of((await browser.get("/admin")).text)
                found.cookies[caller] = browser.cookies
        yield found


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path (FastAPI keeps included routers as wrappers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # an included router
            inner = prefix + route.include_context.prefix
            yield from _walk(route.original_router.routes, inner)


def _routes() -> list[tuple[str, str]]:
    app = create_app(Settings(_env_file=None, api_key="k" * 32, secret_key="s" * 43))
    walked = []
    for path, route in _walk(app.routes):
        if not path.startswith(("/admin", "/api/v1")) or PUBLIC.match(path):
            continue
        walked += [(method, path) for method in sorted(route.methods or ())]
    return sorted(set(walked))


async def _footprint(session: AsyncSession) -> tuple[int, int]:
    people = await session.scalar(select(func.count()).select_from(Person))
    mails = await session.scalar(select(func.count()).select_from(OutboxMessage))
    return int(people or 0), int(mails or 0)


@pytest.mark.asyncio
async def test_every_route_for_every_caller(callers: Callers, session: AsyncSession) -> None:
    routes = _routes()
    assert len(routes) > 60  # the walk does see the whole staff surface
    before = await _footprint(session)
    wrong: list[str] = []
    for method, template in routes:
        path = _fill(template, callers.values)
        for caller in CALLERS:
            should = allowed(caller, path, method)
            if method != "GET" and should:
                continue  # the organiser's writes are checked without CSRF below
            async with (
                callers.client(caller) as client,
                client.stream(method, path) as answer,  # headers only: a stream may last
            ):
                refused = _refused(answer)
            if refused == should:
                wrong.append(f"{method} {path} as {caller}: {answer.status_code}")
    assert wrong == [], "\n".join(wrong)
    session.expire_all()
    assert await _footprint(session) == before  # no refused request changed anything


@pytest.mark.asyncio
async def test_staff_forms_without_the_csrf_token_are_refused(
    callers: Callers, session: AsyncSession
) -> None:
    before = await _footprint(session)
    posts = [
        _fill(path, callers.values)
        for method, path in _routes()
        if method == "POST" and path.startswith("/admin")
    ]
    assert len(posts) > 20
    async with callers.client("organiser") as client:
        for path in posts:
            answer = await client.post(path, data={"csrf_token": "forged"})
            assert answer.status_code == 403, path
    session.expire_all()
    assert await _footprint(session) == before
