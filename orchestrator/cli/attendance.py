"""`attendance export`: the attendance list as CSV or XLSX."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.cli.common import fail, load_settings, run, with_db

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
    body = run(lambda: with_db(settings, lambda s: _attendance_export(s, slug, format_)))
    if output is None and format_ == "csv":
        sys.stdout.buffer.write(body)
        return
    target = output or Path(f"{slug}-anwesenheit.xlsx")
    try:
        target.write_bytes(body)
    except OSError as error:
        raise fail(f"{target}: {error.strerror}") from None
    typer.echo(str(target))


async def _attendance_export(session: AsyncSession, slug: str, format_: str) -> bytes:
    from orchestrator.attendance import exports
    from orchestrator.attendance.table import attendance_table
    from orchestrator.clock import system_clock
    from orchestrator.conferences import repository

    conference = await repository.get_by_slug(session, slug)
    rows = await attendance_table(session, conference, system_clock())
    if format_ == "csv":
        return exports.to_csv(rows)
    return exports.to_xlsx(rows, exports.summary(rows))
