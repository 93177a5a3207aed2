"""The organiser's test mailbox (/admin/mail) over real HTTP, on SQLite and PostgreSQL.

Messages reach the sink the way the worker puts them there: built by the mail renderer and
written by SinkTransport. Hostile ones are written as raw bytes, as a foreign tool might.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.config import Settings
from orchestrator.mail.mime import serialise
from orchestrator.mail.rendering import Rendered, build_message, mailbox
from orchestrator.mail.smtp import SinkTransport, sink_file_name
from orchestrator.web import admin_mail, staff
from tests.conftest import API_KEY, load_sample
from tests.smtp_server import FROM
from tests.test_staff_login import CHECKIN, Staff, live

__all__ = ["live"]  # the fixture, shared with the login tests

MAIL = "/admin/mail"
HOSTILE = 'Ömer "O\'Connor" <script>alert(1)</script>\r\nBcc: x@example.org'
ESCAPED = "Ömer &#34;O&#39;Connor&#34; &lt;script&gt;alert(1)&lt;/script&gt; Bcc: x@example.org"
CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\n"
    b"BEGIN:VEVENT\r\nUID:u1@kreis.example\r\nDTSTAMP:20270301T000000Z\r\n"
    b"DTSTART:20270318T080000Z\r\nSUMMARY:Konferenz\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def invitation(number: int, when: datetime, name: str = "Anna Muster") -> bytes:
    """An invitation as the renderer builds it: text, HTML, calendar and invite.ics."""
    rendered = Rendered(
        subject=f"Einladung {number}: Integrationskonferenz",
        text=f"Guten Tag {name},\n\nIhre persönliche Seite: https://orchestrator.test/p/t{number}\n",
        html='<p class="html-only">Nur in der HTML-Fassung</p>',
    )
    message = build_message(
        rendered,
        sender="Kreis Heinsberg <ki@kreis.example>",
        recipient=mailbox(name, f"person{number}@example.org"),
        calendar=CALENDAR,
        method="REQUEST",
        language="de",
    )
    message["Message-ID"] = f"<invite-{number}@kreis.example>"
    message["Date"] = format_datetime(when)
    return serialise(message)


def _word(text: str) -> str:
    """An RFC 2047 encoded word: how a CR/LF can hide inside a header."""
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def hostile() -> bytes:
    """A foreign message: CR/LF, quotes and markup in subject, display name, body, file name."""
    head = (
        f"From: Konferenz <ki@kreis.example>\r\nTo: {_word(HOSTILE)} <oemer@example.org>\r\n"
        f"Subject: {_word(HOSTILE)}\r\nDate: Thu, 18 Mar 2027 08:00:00 +0000\r\n"
        "Message-ID: <hostile@kreis.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    body = (
        '--b\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Hallo {HOSTILE}\r\n"
        '--b\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n<p class="html-only">x</p>\r\n'
        "--b\r\nContent-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="<img src=x onerror=alert(1)>.ics"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\naGFsbG8=\r\n--b--\r\n"
    )
    return (head + body).encode()


async def deliver(settings: Settings, *bodies: bytes) -> list[str]:
    """Write messages to the sink as the worker does; their names there."""
    transport = SinkTransport(settings.mail_sink_dir)
    for number, body in enumerate(bodies):
        await transport.send(body, f"person{number}@example.org", FROM)
    return [sink_file_name(body) for body in bodies]


async def raw_get(live: Staff, target: str) -> tuple[int, str, str]:
    """GET exactly this request-target over a socket: no client normalises ../ or %2F."""
    url = urlsplit(str(live.client.base_url))
    cookie = live.client.cookies.get(staff.COOKIE, "")
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: {staff.COOKIE}={cookie}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1").lower(), body.decode(errors="replace")


def rows_of(html: str) -> list[str]:
    """The table rows of the message list, in order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr>")[1:]]


@pytest.mark.asyncio
async def test_mail_pages_need_a_staff_login(live: Staff) -> None:
    [name] = await deliver(live.settings, invitation(1, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    for path in (MAIL, f"{MAIL}/{name}", f"{MAIL}/{name}/download", f"{MAIL}/..%2Fx.eml"):
        page = await live.client.get(path)
        assert page.status_code == 303, path
        decoded = path.replace("%2F", "/")  # the login's `next` is the decoded path
        assert page.headers["location"] == "/admin/login?next=" + quote(decoded, safe="")
        assert "Einladung" not in page.text
        fetch = await live.client.get(path, headers={"Accept": "application/json"})
        assert fetch.status_code == 401 and fetch.json()["code"] == "login_required"


@pytest.mark.asyncio
async def test_list_shows_newest_first_in_german_time(live: Staff) -> None:
    winter, summer = datetime(2027, 3, 18, 8, 30, tzinfo=UTC), datetime(2027, 7, 1, 7, tzinfo=UTC)
    names = await deliver(live.settings, invitation(1, winter), invitation(2, summer))
    await live.signed_in()
    page = await live.client.get(MAIL)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == staff.ADMIN_HEADERS["Content-Security-Policy"]
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "Es ist kein Mailserver (SMTP) eingerichtet" in html
    assert "Nachrichten insgesamt: 2. Uhrzeiten in deutscher Zeit (Europe/Berlin)." in html
    newest, oldest = rows_of(html)
    assert '<time datetime="2027-07-01T09:00:00+02:00">01.07.2027, 09:00</time>' in newest
    assert "person1@example.org" in newest  # Delivered-To: the sink's recipient
    assert f'<a href="/admin/mail/{names[1]}">Einladung 2: Integrationskonferenz</a>' in newest
    assert "01.03.2027" not in oldest and "18.03.2027, 09:30" in oldest  # CET in March
    size = (live.settings.mail_sink_dir / names[0]).stat().st_size
    assert f"{size / 1024:.1f}".replace(".", ",") + " KB" in oldest
    assert '<th scope="col">Betreff</th>' in html and "<caption" in html
    assert '<a href="/admin/mail" aria-current="page">Test-Postfach</a>' in html
    english = await live.client.get(MAIL, headers={"Accept-Language": "en"})
    assert "Messages in all: 2. Times are German time (Europe/Berlin)." in english.text
    assert "1 Jul 2027, 09:00" in english.text and "No mail server (SMTP)" in english.text


@pytest.mark.asyncio
async def test_list_is_paged(live: Staff, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_mail, "PAGE_SIZE", 2)
    bodies = [invitation(n, datetime(2027, 3, 1, 8, n, tzinfo=UTC)) for n in range(5)]
    await deliver(live.settings, *bodies)
    await live.signed_in()
    first = (await live.client.get(MAIL)).text
    assert "Nachrichten 1 bis 2 von 5, neueste zuerst" in first
    assert ["Einladung 4" in row for row in rows_of(first)] == [True, False]
    assert '<a href="/admin/mail?page=2">Ältere Nachrichten</a>' in first
    assert "Neuere Nachrichten" not in first and "Seite 1 von 3" in first
    last = (await live.client.get(f"{MAIL}?page=3")).text
    assert "Nachrichten 5 bis 5 von 5" in last and "Einladung 0" in last
    assert '<a href="/admin/mail?page=2">Neuere Nachrichten</a>' in last
    assert "Ältere Nachrichten" not in last
    beyond = await live.client.get(f"{MAIL}?page=99")
    assert beyond.status_code == 200 and "Auf dieser Seite sind keine Nachrichten." in beyond.text
    for junk in ("abc", "-1", "0", "1e9"):
        assert "Nachrichten 1 bis 2 von 5" in (await live.client.get(f"{MAIL}?page={junk}")).text


@pytest.mark.asyncio
async def test_with_smtp_configured_the_page_says_mail_goes_to_the_server(live: Staff) -> None:
    await live.signed_in()
    empty = (await live.client.get(MAIL)).text
    assert "Hier sind noch keine Nachrichten." in empty and "<table" not in empty
    live.settings.smtp_host = "mail.kreis-heinsberg.example"
    page = (await live.client.get(MAIL)).text
    assert "Ein Mailserver (SMTP) ist eingerichtet: mail.kreis-heinsberg.example." in page
    assert "nur Nachrichten, die früher hier abgelegt wurden" in page
    assert "Es ist kein Mailserver" not in page
    await deliver(live.settings, invitation(1, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    caught = (await live.client.get(MAIL)).text
    assert "Einladung 1" in caught and "Ein Mailserver (SMTP) ist eingerichtet" in caught


@pytest.mark.asyncio
async def test_message_page_shows_headers_text_and_parts_but_never_the_html(
    live: Staff,
) -> None:
    [name] = await deliver(live.settings, invitation(7, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    await live.signed_in()
    page = await live.client.get(f"{MAIL}/{name}")
    assert page.status_code == 200, page.text
    policy = staff.ADMIN_HEADERS["Content-Security-Policy"]
    assert page.headers["content-security-policy"] == f"{policy}; frame-src 'self'"
    html = page.text
    assert "<h1>Einladung 7: Integrationskonferenz</h1>" in html
    assert "<dd>Kreis Heinsberg &lt;ki@kreis.example&gt;</dd>" in html
    assert "<dd>Anna Muster &lt;person7@example.org&gt;</dd>" in html
    assert "18.03.2027, 09:00</time> (deutsche Zeit)" in html
    text = html.split('<pre class="mail-text">', 1)[1].split("</pre>", 1)[0]
    assert (
        text == "Guten Tag Anna Muster,\n\nIhre persönliche Seite: https://orchestrator.test/p/t7\n"
    )
    assert "html-only" not in html and "Nur in der HTML-Fassung" not in html
    frame = f'<iframe class="mail-frame" sandbox src="/admin/mail/{name}/html"'
    assert frame in html  # the HTML only in a sandboxed frame of its own
    parts = html.split('<caption id="parts-caption">', 1)[1]
    for shown in ("text/plain", "text/html", "text/calendar", "application/ics"):
        assert f"<td>{shown}</td>" in parts
    assert "<td>invite.ics</td>" in parts and "<td>Anhang</td>" in parts
    assert f'<a class="button" href="/admin/mail/{name}/download" download>' in html
    assert '<a href="/admin/mail">Zurück zur Liste der Nachrichten</a>' in html
    english = await live.client.get(f"{MAIL}/{name}", headers={"Accept-Language": "en"})
    assert "Parts and attachments" in english.text and "(German time)" in english.text


@pytest.mark.asyncio
async def test_download_is_the_original_eml_as_an_attachment(live: Staff) -> None:
    [name] = await deliver(live.settings, invitation(3, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    await live.signed_in()
    response = await live.client.get(f"{MAIL}/{name}/download")
    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == (live.settings.mail_sink_dir / name).read_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(response.content)
    assert parsed["Subject"] == "Einladung 3: Integrationskonferenz"


@pytest.mark.asyncio
async def test_hostile_headers_names_and_bodies_are_escaped(live: Staff) -> None:
    [name] = await deliver(live.settings, hostile())
    await live.signed_in()
    listing = await live.client.get(MAIL)
    assert listing.status_code == 200
    assert f'<a href="/admin/mail/{name}">{ESCAPED}</a>' in listing.text  # CR/LF: one line
    assert "<script>" not in listing.text and "\r" not in listing.text
    page = await live.client.get(f"{MAIL}/{name}")
    assert page.status_code == 200
    html = page.text
    assert "<script>" not in html and "<img src=x" not in html and "html-only" not in html
    assert f"<h1>{ESCAPED}</h1>" in html
    assert f"<dd>{ESCAPED} &lt;oemer@example.org&gt;</dd>" in html  # the To display name
    assert "Hallo Ömer &#34;O&#39;Connor&#34; &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td>&lt;img src=x onerror=alert(1)&gt;.ics</td>" in html
    api = await live.client.get("/api/v1/mail-sink", headers={"Authorization": f"Bearer {API_KEY}"})
    assert api.status_code == 200 and api.json()[0]["subject"] == HOSTILE


TRAVERSALS = [
    "/admin/mail/../outside.eml",
    "/admin/mail/..%2Foutside.eml",
    "/admin/mail/..%2foutside.eml/download",
    "/admin/mail/%2E%2E%2Foutside.eml",
    "/admin/mail/%2e%2e/outside.eml",
    "/admin/mail/%2E%2E/download",
    "/admin/mail/..%5Coutside.eml",
    "/admin/mail/..%252Foutside.eml",
    "/admin/mail/%252E%252E%252Foutside.eml/download",
    "/admin/mail/..%2F..%2Fsecrets%2Fsecret_key",
    "/admin/mail/%2Fetc%2Fpasswd",
    "/admin/mail//etc/passwd",
    "/admin/mail/.hidden.eml",
    "/admin/mail/.hidden.eml/download",
    "/admin/mail/mail%2F..%2F..%2Foutside.eml",
    "/admin/mail/%3Cscript%3Ealert(1)%3C%2Fscript%3E.eml",
    "/admin/mail/20270318T080000Z-missing.eml",
    "/admin/mail/20270318T080000Z-missing.eml/download",
    "/admin/mail/nothing-here",
]


@pytest.mark.asyncio
async def test_traversal_and_unknown_names_get_the_not_found_page(live: Staff) -> None:
    await deliver(live.settings, invitation(1, datetime(2027, 3, 18, 8, tzinfo=UTC)))
    data = live.settings.data_dir
    (data / "outside.eml").write_text("Subject: OUTSIDE-SECRET\r\n\r\nx\r\n")
    (live.settings.mail_sink_dir / ".hidden.eml").write_text("Subject: HIDDEN-SECRET\r\n\r\nx\r\n")
    secret = (live.settings.secrets_dir / "secret_key").read_text().strip()
    await live.signed_in()
    for target in TRAVERSALS:
        status, head, body = await raw_get(live, target)
        assert status == 404, (target, status, body[:300])
        assert "content-type: text/html" in head, target
        assert "<h1>Nachricht nicht gefunden</h1>" in body, target
        for leak in ("OUTSIDE-SECRET", "HIDDEN-SECRET", secret, "root:", "Traceback", "<script>"):
            assert leak not in body, (target, leak)
    english = await live.client.get(f"{MAIL}/missing.eml", headers={"Accept-Language": "en"})
    assert english.status_code == 404 and "<h1>Message not found</h1>" in english.text
    trailing = await live.client.get(f"{MAIL}/")
    assert trailing.status_code == 303 and trailing.headers["location"] == MAIL


@pytest.mark.asyncio
async def test_check_in_and_mail_pages_link_to_each_other(
    live: Staff, session: AsyncSession
) -> None:
    await load_sample(session)
    await live.signed_in()
    checkin = (await live.client.get(CHECKIN)).text
    nav = checkin.split('<nav class="admin-nav"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="/admin/mail">Test-Postfach</a>' in nav
    mail = (await live.client.get(MAIL)).text
    nav = mail.split('<nav class="admin-nav"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="/admin">Alle Konferenzen</a>' in nav  # the start page lists conferences
    start = await live.client.get("/admin")
    assert 'href="/admin/ik-heinsberg-2027"' in start.text  # whose overview links the check-in
    overview = (await live.client.get("/admin/ik-heinsberg-2027")).text
    assert f'href="{CHECKIN}"' in overview.split('class="section-nav"', 1)[1]
