"""What every command shares: settings, the database, one-line errors and exit status 1."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orchestrator import logs
from orchestrator.config import Settings, get_settings
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.errors import ImportRejectedError, OrchestratorError

T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    typer.echo(f"Fehler: {message}", err=True)
    return typer.Exit(1)


def load_settings() -> Settings:
    try:
        settings = get_settings()
    except OrchestratorError as error:
        raise fail(error.message) from None
    logs.configure(settings.log_level)
    return settings


def _crash_report(error: BaseException) -> typer.Exit:
    """An unexpected error: one line for the user, the traceback into the data directory."""
    settings = get_settings()
    path = settings.data_dir / "crash.log"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(traceback.format_exception(error)) + "\n")
    return fail(f"unerwarteter Fehler ({type(error).__name__}); Einzelheiten in {path}")


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run async work; turn expected failures into one line on stderr and exit status 1."""
    try:
        return _run_expected(work)
    except typer.Exit:
        raise
    except Exception as error:
        raise _crash_report(error) from None


def run_sync(work: Callable[[], T]) -> T:
    """Sync work with the same one-line error handling as `run`."""
    try:
        return work()
    except OrchestratorError as error:
        raise fail(error.message) from None


def _run_expected(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(work())
    except ImportRejectedError as error:
        print_report(error.details)
        raise fail(error.message) from None
    except OrchestratorError as error:
        raise fail(error.message) from None
    except (OperationalError, DBAPIError) as error:
        reason = str(error.orig or error).splitlines()[0]
        raise fail(f"Datenbank nicht erreichbar oder Fehler der Datenbank: {reason}") from None
    except (OSError, ConnectionError) as error:
        raise fail(f"Datenbank nicht erreichbar: {error}") from None


async def with_db(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, migrate: bool = False
) -> T:
    """Run `work` in one transaction on a fresh engine, after migrating if asked."""
    engine = create_engine(settings.resolved_database_url)
    try:
        if migrate:
            await upgrade_schema(engine)
        async with transaction(session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


async def upgrade_schema(engine: AsyncEngine) -> None:
    from orchestrator.schema import upgrade

    await upgrade(engine)


async def follow_up(session: AsyncSession, settings: Settings, conference: Any) -> None:
    """Calendar updates and reminder plans follow every change (orchestrator.followups)."""
    from orchestrator.clock import system_clock
    from orchestrator.followups import MailContext, after_change

    mail = MailContext(base_url=settings.base_url, sender=settings.mail_from)
    await after_change(session, conference, mail, system_clock())


def print_report(report: Any) -> None:
    if not isinstance(report, dict):
        return
    for problem in report.get("errors", []):
        where = f" ({problem['field']})" if problem.get("field") else ""
        typer.echo(f"  Zeile {problem['row']}{where}: {problem['reason']}", err=True)
