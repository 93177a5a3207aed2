"""Staff accounts from the command line: `users add` (the first organiser is made this way)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.cli.common import fail, load_settings, run, with_db

users_app = typer.Typer(
    help="Zugänge des Veranstaltungsteams / staff accounts", no_args_is_help=True
)


class RoleChoice(StrEnum):
    organiser = "organiser"
    moderator = "moderator"
    checkin = "checkin"


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="E-Mail-Adresse / email address")],
    role: Annotated[RoleChoice, typer.Option(help="Rolle / role")],
    conference: Annotated[
        str | None, typer.Option(help="Slug; ohne: Organisation aller Konferenzen")
    ] = None,
    forum: Annotated[str | None, typer.Option(help="Forum (Schlüssel) für die Moderation")] = None,
    name: Annotated[str, typer.Option(help="Name")] = "",
    language: Annotated[
        str | None, typer.Option(help="de oder en (sonst die Sprache des Browsers)")
    ] = None,
) -> None:
    """Zugang anlegen (oder eine Rolle ergänzen); gibt den Link zum Festlegen des Passworts aus
    und schickt ihn per E-Mail."""
    from orchestrator.accounts import service as accounts
    from orchestrator.accounts.mail import link_url, send_link
    from orchestrator.accounts.models import LinkPurpose, StaffRole
    from orchestrator.clock import system_clock
    from orchestrator.conferences import repository

    settings = load_settings()
    if forum is not None and conference is None:
        raise fail("--forum braucht --conference (der Slug der Konferenz).")
    if role is RoleChoice.moderator and forum is None:
        raise fail("Für --role moderator bitte --forum KEY angeben.")
    if role is RoleChoice.checkin and conference is None:
        raise fail("Für --role checkin bitte --conference SLUG angeben.")

    async def work(session: AsyncSession) -> tuple[str, bool]:
        now = system_clock()
        conference_id = forum_id = None
        if conference is not None:
            found = await repository.get_by_slug(session, conference)
            conference_id = found.id
            if forum is not None:
                forum_id = repository.forum_by_key(found, forum).id
        user = await accounts.add_user(
            session,
            email,
            StaffRole(role.value),
            now,
            conference_id=conference_id,
            forum_id=forum_id,
            name=name,
            language=language,
        )
        if user.password_hash is not None:
            return "", False
        token = await send_link(
            session,
            user,
            LinkPurpose.SET_PASSWORD,
            now,
            base_url=settings.base_url,
            sender=settings.mail_from,
        )
        await accounts.audit(session, "user_added", now, user_id=user.id, detail=role.value)
        return link_url(settings.base_url, token), True

    link, fresh = run(lambda: with_db(settings, work, migrate=True))
    if not fresh:
        typer.echo(f"{email}: Rolle {role.value} ergänzt (Passwort war schon festgelegt).")
        return
    typer.echo(f"{email}: Zugang angelegt. Link zum Festlegen des Passworts (7 Tage gültig),")
    typer.echo("auch per E-Mail unterwegs:")
    typer.echo(link)
