"""Setting a conference up: `conference import`, `participants import`, `forums assign`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.cli.common import (
    fail,
    follow_up,
    load_settings,
    print_report,
    run,
    run_sync,
    with_db,
)
from orchestrator.config import Settings

conference_app = typer.Typer(help="Konferenzen / conferences", no_args_is_help=True)
participants_app = typer.Typer(help="Teilnehmende / participants", no_args_is_help=True)
forums_app = typer.Typer(help="Foren / forums", no_args_is_help=True)


@conference_app.command("import")
def conference_import(file: Annotated[Path, typer.Argument(help="conference TOML")]) -> None:
    """Konferenz aus TOML anlegen oder aktualisieren; gibt den Slug aus."""
    from orchestrator.conferences import service

    settings = load_settings()
    from orchestrator.rooms.templates import load_templates

    spec = run_sync(lambda: service.parse_spec_file(file))
    templates = run_sync(lambda: load_templates(settings.room_templates_dir))

    async def work(session: AsyncSession) -> service.ImportOutcome:
        outcome = await service.import_spec(session, spec, templates)
        await follow_up(session, settings, outcome.conference)
        return outcome

    outcome = run(lambda: with_db(settings, work, migrate=True))
    for change in outcome.changes:
        typer.echo(f"  {change}", err=True)
    typer.echo(outcome.conference.slug)


@participants_app.command("import")
def participants_import(
    slug: str,
    file: Path,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="gültige Zeilen trotzdem importieren")
    ] = False,
) -> None:
    """Teilnehmende aus CSV (; oder ,) oder XLSX importieren."""
    from orchestrator.conferences import repository
    from orchestrator.participants import importing

    settings = load_settings()
    try:
        data = file.read_bytes()
    except OSError as error:
        raise fail(f"{file}: {error.strerror}") from None

    async def work(session: AsyncSession) -> importing.ImportReport:
        conference = await repository.get_by_slug(session, slug)
        report = await importing.import_file(
            session, conference, file.name, data, skip_invalid=skip_invalid
        )
        await follow_up(session, settings, conference)
        return report

    report = run(lambda: with_db(settings, work))
    print_report(report.as_dict())
    typer.echo(
        f"{report.created} neu, {report.updated} aktualisiert, {report.skipped} übersprungen."
    )


@forums_app.command("assign")
def forums_assign(
    slug: str,
    overflow: Annotated[
        str | None,
        typer.Option(
            help="most_room: in das Forum mit den meisten freien Plätzen; waitlist: Warteliste"
        ),
    ] = None,
) -> None:
    """Foren nach Wünschen und Kapazitäten zuteilen (Zuweisungen durch das Orga-Team bleiben)."""
    settings = load_settings()
    policy = overflow or settings.assignment_overflow
    if policy not in ("most_room", "waitlist"):
        raise fail("--overflow muss most_room oder waitlist sein.")
    report = run(lambda: with_db(settings, lambda s: _assign(s, settings, slug, policy)))
    _print_assignment(report)


async def _assign(
    session: AsyncSession, settings: Settings, slug: str, policy: str
) -> dict[str, Any]:
    from orchestrator.conferences import repository
    from orchestrator.participants import assignment

    conference = await repository.get_by_slug(session, slug)
    mode: Literal["most_room", "waitlist"] = "waitlist" if policy == "waitlist" else "most_room"
    report = await assignment.run_assignment(session, conference, overflow=mode)
    await follow_up(session, settings, conference)
    return report.as_dict()


def _print_assignment(report: dict[str, Any]) -> None:
    typer.echo(
        f"{report['total']} Personen: {report['first_choice']} Erstwunsch, "
        f"{report['second_choice']} Zweitwunsch, {report['other_choice']} weiterer Wunsch, "
        f"{report['overflow']} ohne Wunschforum verteilt, {report['waitlisted']} Warteliste, "
        f"{report['no_choice']} ohne Wahl, {report['kept']} manuell festgelegt."
    )
    for forum in report.get("forums", []):
        typer.echo(f"  {forum['key']:<20} {forum['assigned']:>5} / {forum['capacity']}")
