"""axe-core (WCAG 2.1 A and AA rules) and keyboard checks in headless Chromium (SPEC §4.12).

Needs Debian's `chromium` and `npm ci --prefix tests/a11y` (axe-core); skipped without them,
failed instead when ORCH_TEST_REQUIRE_BROWSER is set (CI, once it installs both).
Chromium is driven over the DevTools protocol (websockets, which uvicorn[standard] brings).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import LinkPurpose, StaffRole
from orchestrator.clock import FrozenClock
from orchestrator.conferences.service import plenary_room
from orchestrator.config import Settings
from orchestrator.participants.assignment import set_override
from orchestrator.participants.models import Language, Person, Rsvp
from orchestrator.web.app import create_app
from tests.conftest import load_sample
from tests.live import serve
from tests.staff_helpers import ORGANISER, PASSWORD, add_staff
from tests.test_admin_mail import deliver, hostile, invitation

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BERLIN = ZoneInfo("Europe/Berlin")
SLUG = "ik-heinsberg-2027"
CHECKIN_HELPER = "einlass@example.org"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
)
# Every backend gives the same HTML: run these once, on SQLite.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _missing(reason: str) -> NoReturn:
    """Skip, or fail where the browser is required (ORCH_TEST_REQUIRE_BROWSER set)."""
    if os.environ.get("ORCH_TEST_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


def _browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        _missing("no Chromium: apt-get install chromium")
    if not AXE.is_file():
        _missing("no axe-core: npm ci --prefix tests/a11y")
    return found


class Page:
    """One browser tab over the DevTools protocol: navigate, evaluate, press keys."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket, self.last_id, self.events = socket, 0, list[dict[str, Any]]()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        await self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), 30))
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    async def loaded(self) -> None:
        while not any(event.get("method") == "Page.loadEventFired" for event in self.events):
            self.events.append(json.loads(await asyncio.wait_for(self.socket.recv(), 30)))

    async def open(self, url: str) -> None:
        self.events.clear()
        await self.send("Page.navigate", url=url)
        await self.loaded()

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(str(answer["exceptionDetails"])[:500])
        return answer["result"].get("value")

    async def submit(self, expression: str) -> None:
        """Run a script that submits a form, and wait for the answer to load."""
        self.events.clear()
        await self.evaluate(expression)
        await self.loaded()

    async def tab(self) -> dict[str, str]:
        for kind in ("rawKeyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent", type=kind, key="Tab", code="Tab", windowsVirtualKeyCode=9
            )
        focus = """(() => { const e = document.activeElement, s = getComputedStyle(e);
            return {tag: e.tagName, text: (e.textContent || e.value || '').trim().slice(0, 60),
                    outline: s.outlineStyle + ' ' + s.outlineWidth}; })()"""
        found: dict[str, str] = await self.evaluate(focus)
        return found

    async def violations(self) -> list[str]:
        await self.evaluate(AXE.read_text(encoding="utf-8"))
        options = json.dumps({"runOnly": {"type": "tag", "values": RULES}})
        found = await self.evaluate(
            f"axe.run(document, {options}).then(r => r.violations.map(v => "
            "`${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target).join(' | ')}`))"
        )
        # axe does not check reflow (WCAG 1.4.10): on a phone, no sideways scrolling.
        width = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        wider = await self.evaluate(width)
        if wider > 0:
            found.append(f"reflow: the page is {wider}px wider than the screen")
        return list(found)


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    marker = profile / "DevToolsActivePort"
    for _ in range(300):
        if marker.is_file() and (lines := marker.read_text().splitlines()):
            return int(lines[0])
        if process.returncode is not None:
            break
        await asyncio.sleep(0.1)
    _missing("Chromium did not start its DevTools endpoint")


@pytest_asyncio.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    profile = tmp_path / "chromium-profile"
    process = await asyncio.create_subprocess_exec(
        _browser(),
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "LANG": "de_DE.UTF-8"},
    )
    try:
        port = await _devtools_port(profile, process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            targets = (await client.get("/json/list")).json()
        address = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with connect(address, max_size=None) as socket:
            tab = Page(socket)
            await tab.send("Page.enable")
            await tab.send(
                "Emulation.setDeviceMetricsOverride",
                width=390,
                height=844,
                deviceScaleFactor=1,
                mobile=True,
            )
            yield tab
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()


async def _people(session: AsyncSession) -> tuple[dict[str, Person], dict[str, str]]:
    conference = await load_sample(session)
    rooms = {forum.key: forum.room.name for forum in conference.forums if forum.room}
    rooms |= {item.key: room.name for item in conference.sessions if (room := plenary_room(item))}
    people: dict[str, Person] = {}
    for label, forum in [("anna", "sprache"), ("emma", "werte"), ("waiting", None)]:
        person = Person(conference_id=conference.id, email=f"{label}@example.org")
        person.first_name, person.last_name = label.capitalize(), "Muster"
        person.language = Language.EN if label == "emma" else Language.DE
        person.rsvp = Rsvp.DECLINED if label == "emma" else Rsvp.NEEDS_ACTION
        session.add(person)
        await session.flush()
        await set_override(session, conference, person.id, forum, force=True)
        people[label] = person
    await session.commit()
    return people, rooms


@pytest_asyncio.fixture
async def site(settings: Settings, session: AsyncSession) -> AsyncIterator[tuple[str, Any]]:
    people, rooms = await _people(session)
    await add_staff(session)  # an organiser of every conference
    await add_staff(session, CHECKIN_HELPER, StaffRole.CHECKIN, conference=SLUG)
    clock = FrozenClock(datetime(2027, 3, 18, 9, 30, tzinfo=BERLIN))  # the plenary is open
    app = create_app(settings, clock=clock)
    async with serve(app) as base_url:
        yield base_url, (people, rooms)


@pytest.mark.asyncio
async def test_pages_have_no_axe_violations(page: Page, site: tuple[str, Any]) -> None:
    base, (people, rooms) = site
    anna, emma, waiting = people["anna"], people["emma"], people["waiting"]
    urls = [
        f"/p/{anna.token}",
        f"/p/{anna.token}?status=forum_full#status",
        f"/p/{emma.token}?status=rsvp_saved",
        f"/p/{waiting.token}",
        f"/j/{anna.token}/{rooms['sprache']}",  # not open yet
        f"/j/{anna.token}/{rooms['werte']}",  # not hers
        f"/j/{waiting.token}/{rooms['sprache']}",  # waiting list
        "/p/no-such-token-000000000000000",
    ]
    found = {}
    for url in urls:
        await page.open(base + url)
        found[url] = await page.violations()
    await page.open(f"{base}/p/{anna.token}")
    await page.submit(
        "const form = document.querySelector('form[action$=\"/rsvp\"]');"
        "form.elements.csrf.value = 'x'; form.submit();"
    )
    assert "nicht angenommen" in await page.evaluate("document.title")
    found["403 form page"] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}
    await page.open('data:text/html,<html><body><img src="x.png"></body></html>')
    assert len(await page.violations()) >= 2  # axe does see problems: no lang, no alt text


async def _key(page: Page, key: str, code: str, number: int, text: str = "") -> None:
    await page.send(
        "Input.dispatchKeyEvent",
        type="keyDown" if text else "rawKeyDown",
        key=key,
        code=code,
        windowsVirtualKeyCode=number,
        text=text,
    )
    await page.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code)


@pytest.mark.asyncio
async def test_personal_page_works_by_keyboard(page: Page, site: tuple[str, Any]) -> None:
    base, (people, rooms) = site
    anna = people["anna"]
    await page.open(f"{base}/p/{anna.token}")
    stops: list[dict[str, str]] = []
    while len(stops) < 40 and (stop := await page.tab())["tag"] != "BODY":
        stops.append(stop)  # one round through the page, until focus leaves it
    assert stops[0]["text"] == "Zum Hauptinhalt springen"
    texts = [stop["text"] for stop in stops]
    for wanted in ("Switch to English", "Forum wechseln", "Antwort speichern", "Einwilligen"):
        assert wanted in texts, texts
    assert any(text.startswith("Jetzt an „Begrüßung") for text in texts), texts
    assert all(stop["outline"].startswith("solid") for stop in stops), stops
    link = f"/j/{anna.token}/{rooms['opening']}"
    selector = json.dumps(f'a[href="{link}"]')
    assert await page.evaluate(f"!!document.querySelector({selector})")
    # Answer by keyboard alone: to the first answer, Space, Tab to the button, Enter.
    for _ in range(40):
        if (await page.tab())["text"] == "accepted":
            break
    await _key(page, " ", "Space", 32, " ")
    assert (await page.tab())["text"] == "Antwort speichern"
    page.events.clear()
    await _key(page, "Enter", "Enter", 13, "\r")
    await page.loaded()
    assert await page.evaluate("location.search") == "?status=rsvp_saved"
    assert await page.evaluate("document.getElementById('answer-accepted').checked")


async def _staff_login(
    page: Page, base: str, next_url: str, email: str = ORGANISER, password: str = PASSWORD
) -> None:
    """Sign in as staff in the browser, through the login form; the browser asks for German."""
    await page.send("Network.enable")
    await page.send("Network.setExtraHTTPHeaders", headers={"Accept-Language": "de-DE,de;q=0.9"})
    await page.open(f"{base}/admin/login?next={next_url}")
    await page.submit(
        f"document.getElementById('email').value = {json.dumps(email)};"
        f"document.getElementById('password').value = {json.dumps(password)};"
        "document.querySelector('form.admin-form').submit();"
    )
    assert await page.evaluate("location.pathname") == next_url


@pytest.mark.asyncio
async def test_sign_in_and_password_pages_have_no_axe_violations(
    page: Page, site: tuple[str, Any], session: AsyncSession
) -> None:
    base, _ = site
    user = await accounts.find_user(session, ORGANISER)
    assert user is not None
    token = await accounts.issue_link(session, user, LinkPurpose.RESET_PASSWORD, datetime.now(UTC))
    await session.commit()
    found = {}
    for query in ("", "?lang=en"):
        for url in ("/admin/login", "/admin/password-reset", f"/admin/password/{token}"):
            await page.open(base + url + query)
            found[url + query] = await page.violations()
        await page.open(f"{base}/admin/password/{'x' * 43}{query}")  # no such link
        found["link_invalid" + query] = await page.violations()
        await page.open(f"{base}/admin/login{query}")
        await page.submit(
            "document.getElementById('email').value = 'orga@example.org';"
            "document.getElementById('password').value = 'wrong password';"
            "document.querySelector('form.admin-form').submit();"
        )
        assert await page.evaluate("document.getElementById('login-error') !== null")
        found["wrong password" + query] = await page.violations()
        await page.open(f"{base}/admin/password-reset{query}")
        await page.submit("document.querySelector('form.admin-form').submit();")
        found["reset sent" + query] = await page.violations()
    await _staff_login(page, base, f"/admin/{SLUG}/checkin", CHECKIN_HELPER)
    for query in ("", "?lang=en"):
        await page.open(f"{base}/admin{query}")
        found["home" + query] = await page.violations()
        await page.open(f"{base}/admin/mail{query}")  # not for check-in staff: 403
        assert "Kein Zugriff" in await page.evaluate("document.body.innerText") or query
        found["forbidden" + query] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}


@pytest.mark.asyncio
async def test_mail_pages_have_no_axe_violations(
    page: Page, site: tuple[str, Any], settings: Settings
) -> None:
    base, _ = site
    when = datetime(2027, 3, 18, 8, tzinfo=UTC)
    name, bad = await deliver(settings, invitation(1, when), hostile())
    await _staff_login(page, base, "/admin/mail")
    urls = [
        "/admin/ik-heinsberg-2027/checkin",  # links to the mailbox in its header
        "/admin/mail",
        f"/admin/mail/{name}",
        f"/admin/mail/{bad}",
        "/admin/mail/missing.eml",
        "/admin/mail/..%2Fx",
    ]
    found = {}
    for url in urls:
        for query in ("", "?lang=en"):
            await page.open(base + url + query)
            assert await page.evaluate("document.documentElement.lang") == (query[-2:] or "de")
            found[url + query] = await page.violations()
    settings.smtp_host = "mail.kreis-heinsberg.example"
    await page.open(f"{base}/admin/mail")
    assert "mail.kreis-heinsberg.example" in await page.evaluate("document.body.innerText")
    found["with SMTP"] = await page.violations()
    assert {url: v for url, v in found.items() if v} == {}


@pytest.mark.asyncio
async def test_mail_pages_work_by_keyboard(
    page: Page, site: tuple[str, Any], settings: Settings
) -> None:
    base, _ = site
    [name] = await deliver(settings, invitation(1, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    await _staff_login(page, base, "/admin/ik-heinsberg-2027/checkin")

    async def follow(text: str) -> None:
        """Tab to the link with this text (its focus visible) and press Enter."""
        for _ in range(40):
            stop = await page.tab()
            if stop["text"] == text:
                assert stop["outline"].startswith("solid"), stop
                page.events.clear()
                await _key(page, "Enter", "Enter", 13, "\r")
                await page.loaded()
                return
        raise AssertionError(f"no focus stop {text!r}")

    await follow("Test-Postfach")  # from the check-in page's header
    assert await page.evaluate("location.pathname") == "/admin/mail"
    await follow("Einladung 1: Integrationskonferenz")
    assert await page.evaluate("location.pathname") == f"/admin/mail/{name}"
    stops: list[dict[str, str]] = []
    while len(stops) < 40 and (stop := await page.tab())["tag"] != "BODY":
        stops.append(stop)  # one round through the message page
    texts = [stop["text"] for stop in stops]
    assert texts[0] == "Zum Hauptinhalt springen", texts
    for wanted in ("Alle Konferenzen", "Test-Postfach", "Abmelden"):
        assert wanted in texts, texts
    assert any(text.startswith("Nachricht herunterladen (.eml,") for text in texts), texts
    assert sum(stop["tag"] == "DIV" for stop in stops) == 1  # the scrollable parts table
    assert all(stop["outline"].startswith("solid") for stop in stops), stops
    await follow("Zurück zur Liste der Nachrichten")
    assert await page.evaluate("location.pathname") == "/admin/mail"
    await follow("Alle Konferenzen")  # back: the start page lists each check-in page
    assert await page.evaluate("location.pathname") == "/admin"
