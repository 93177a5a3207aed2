"""The demo: the sample conference, generated invitees and a first forum assignment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.accounts import passwords
from orchestrator.accounts import service as accounts
from orchestrator.accounts.models import StaffRole
from orchestrator.conferences import repository
from orchestrator.conferences import service as conferences
from orchestrator.config import Settings
from orchestrator.db import utcnow
from orchestrator.demo import people
from orchestrator.followups import MailContext, after_change
from orchestrator.invitations import service as invitations
from orchestrator.mail.rendering import message_domain
from orchestrator.participants import assignment, importing
from orchestrator.participants import repository as participants

SAMPLE_CONFERENCE = Path(__file__).with_name("conference-heinsberg.toml")
DEMO_ORGANISER = "organisation@example.org"
PASSWORD_FILE = "demo_organiser_password"  # noqa: S105  a file name, not a password


@dataclass
class DemoSummary:
    slug: str
    forums: int
    people: int
    first_choice: int
    second_choice: int
    invitations: int
    sample_token: str
    organiser_email: str = DEMO_ORGANISER
    organiser_password: str = ""


async def load(session: AsyncSession, count: int, settings: Settings) -> DemoSummary:
    """Import (or refresh) the sample conference with `count` people, assign, invite."""
    outcome = await conferences.import_file(session, SAMPLE_CONFERENCE)
    conference = await repository.get_by_slug(session, outcome.conference.slug)
    rows = people.generate(count, [forum.key for forum in conference.forums], seed=1)
    rows.append(
        {
            "email": conference.organiser_email or "ki@example.org",
            "first_name": "Orga",
            "last_name": "Team",
            "organisation": conference.organiser,
            "role": "organiser",
            "attendance_mode": "in_person",
            "language": "de",
        }
    )
    await importing.import_rows(
        session, conference, list(enumerate(rows, start=2)), skip_invalid=False
    )
    report = await assignment.run_assignment(session, conference)
    mail = MailContext(base_url=settings.base_url, sender=settings.mail_from)
    await after_change(session, conference, mail, utcnow())
    invited = await invitations.queue_invitations(
        session,
        conference,
        base_url=settings.base_url,
        message_domain=message_domain(settings.mail_from),
        sender=settings.mail_from,
        now=utcnow(),
    )
    sample = await participants.find_by_email(session, conference.id, rows[0]["email"])
    password = await demo_organiser(session, settings)
    return DemoSummary(
        slug=conference.slug,
        forums=len(conference.forums),
        people=await participants.count(session, conference.id),
        first_choice=report.first_choice,
        second_choice=report.second_choice,
        invitations=invited.queued,
        sample_token=sample.token if sample else "",
        organiser_password=password,
    )


def _demo_password(settings: Settings) -> str:
    """The demo organiser's password: made once, kept (0600) in the data directory."""
    path = settings.secrets_dir / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    settings.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = "-".join(secrets.token_hex(3) for _ in range(3))  # 9f3a1c-0b7e22-51d0aa
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


async def demo_organiser(session: AsyncSession, settings: Settings) -> str:
    """An organiser of every conference for the demo; its password (printed in the banner)."""
    password = _demo_password(settings)
    user = await accounts.add_user(
        session, DEMO_ORGANISER, StaffRole.ORGANISER, utcnow(), name="Demo-Organisation"
    )
    if not passwords.verify(user.password_hash, password):
        user.password_hash = passwords.hash_password(password)
        user.password_changed_at = utcnow()
    return password


def banner(settings: Settings, summary: DemoSummary) -> str:
    """What to open and try, printed before the server starts."""
    key_file = settings.secrets_dir / "api_key"
    base = settings.base_url
    return "\n".join(
        [
            "",
            "Demo bereit / demo ready",
            "",
            f"  Hier anfangen:  {base}/admin",
            f"  Anmeldung:      {summary.organiser_email}, Passwort {summary.organiser_password}",
            "",
            f"  Konferenz:      {summary.slug} ({summary.forums} Foren, {summary.people} Personen;"
            f" {summary.first_choice} im Erstwunsch, {summary.second_choice} im Zweitwunsch)",
            f"  Einladungen:    {summary.invitations} neu eingereiht; Versand in den lokalen "
            f"Briefkasten {settings.mail_sink_dir.resolve()} (.eml)",
            f"  Test-Postfach:  {base}/admin/mail  (die Nachrichten im lokalen Briefkasten)",
            f"  Persönliche Seite (Beispiel): {base}/p/{summary.sample_token}",
            f"  Einlass (Check-in): {base}/admin/{summary.slug}/checkin",
            f"  API:            {base}/api/v1/conferences",
            f"  API-Dokumentation: {base}/docs  (OpenAPI: {base}/openapi.json)",
            f"  API-Schlüssel:  {settings.api_key}  (Datei {key_file})",
            f"  Ausprobieren:   curl -H 'Authorization: Bearer {settings.api_key}' "
            f"{base}/api/v1/conferences",
            f"  Zustand:        {base}/healthz",
            f"  Datenverzeichnis: {settings.data_dir.resolve()}",
            "  Beenden mit Strg+C / stop with Ctrl+C",
            "",
        ]
    )
