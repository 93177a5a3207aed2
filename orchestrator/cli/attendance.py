"""`attendance export`: the attendance list as CSV or XLSX."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import fail, load_settings, run
from orchestrator.config import Settings
from orchestrator.db import create_engine, session_factory, transaction

attendance_app = typer.Typer(help="Anwesenheit / attendance", no_args_is_help=True)


@attendance_app.command("export")
def attendance_export(
    slug: str,
    format_: Annotated[str, typer.Option("--format", help="csv oder xlsx")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", help="Zieldatei; sonst CSV auf stdout, XLSX in <slug>-anwesenheit.xlsx"
        ),
    ] = None,
) -> None:
    """Anwesenheitsliste (eine Zeile je Person und Sitzung) als CSV oder XLSX exportieren."""
    if format_ not in ("csv", "xlsx"):
        raise fail("--format muss csv oder xlsx sein.")
    settings = load_settings()
    body = run(lambda: _attendance_export(settings, slug, format_))
    if output is None and format_ == "csv":
        sys.stdout.buffer.write(body)
        return
    target = output or Path(f"{slug}-anwesenheit.xlsx")
    try:
        target.write_bytes(body)
    except OSError as error:
        raise fail(f"{target}: {error.strerror}") from None
    typer.echo(str(target))


async def _attendance_export(settings: Settings, slug: str, format_: str) -> bytes:
    """Fold what is pending (as the API does), then read the table in one transaction."""
    from orchestrator.attendance import exports
    from orchestrator.attendance.current import current_table
    from orchestrator.clock import system_clock
    from orchestrator.conferences import repository
    from orchestrator.rooms.templates import load_templates

    templates = load_templates(settings.room_templates_dir)
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            conference = await repository.get_by_slug(session, slug)
            rows = await current_table(session, sessions, conference, system_clock, templates)
    finally:
        await engine.dispose()
    if format_ == "csv":
        return exports.to_csv(rows)
    return exports.to_xlsx(rows, exports.summary(rows))
