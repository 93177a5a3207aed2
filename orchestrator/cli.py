"""The `orchestrator` command (SPEC §5): one-line reasons and exit 1 on failure."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator import logs
from orchestrator.config import Settings, get_settings
from orchestrator.db import create_engine, session_factory, transaction
from orchestrator.errors import ImportRejectedError, OrchestratorError

if TYPE_CHECKING:
    from orchestrator.invitations.service import Report

T = TypeVar("T")

app = typer.Typer(
    help="Konferenz-Orchestrator: hybride Konferenzen auf Jitsi Meet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Datenbank / database", no_args_is_help=True)
conference_app = typer.Typer(help="Konferenzen / conferences", no_args_is_help=True)
participants_app = typer.Typer(help="Teilnehmende / participants", no_args_is_help=True)
forums_app = typer.Typer(help="Foren / forums", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(conference_app, name="conference")
app.add_typer(participants_app, name="participants")
app.add_typer(forums_app, name="forums")
invites_app = typer.Typer(help="Einladungen / invitations", no_args_is_help=True)
app.add_typer(invites_app, name="invites")
attendance_app = typer.Typer(help="Anwesenheit / attendance", no_args_is_help=True)
app.add_typer(attendance_app, name="attendance")


def fail(message: str) -> typer.Exit:
    typer.echo(f"Fehler: {message}", err=True)
    return typer.Exit(1)


def _settings() -> Settings:
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
        _print_report(error.details)
        raise fail(error.message) from None
    except OrchestratorError as error:
        raise fail(error.message) from None
    except (OperationalError, DBAPIError) as error:
        reason = str(error.orig or error).splitlines()[0]
        raise fail(f"Datenbank nicht erreichbar oder Fehler der Datenbank: {reason}") from None
    except (OSError, ConnectionError) as error:
        raise fail(f"Datenbank nicht erreichbar: {error}") from None


async def _with_db(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, migrate: bool = False
) -> T:
    engine = create_engine(settings.resolved_database_url)
    try:
        if migrate:
            await _upgrade(engine)
        async with transaction(session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _upgrade(engine: AsyncEngine) -> None:
    from orchestrator.schema import upgrade

    await upgrade(engine)


async def _follow_up(session: AsyncSession, settings: Settings, conference: Any) -> None:
    """Calendar updates and reminder plans follow every change (orchestrator.followups)."""
    from orchestrator.clock import system_clock
    from orchestrator.followups import MailContext, after_change

    mail = MailContext(base_url=settings.base_url, sender=settings.mail_from)
    await after_change(session, conference, mail, system_clock())


def _print_report(report: Any) -> None:
    if not isinstance(report, dict):
        return
    for problem in report.get("errors", []):
        where = f" ({problem['field']})" if problem.get("field") else ""
        typer.echo(f"  Zeile {problem['row']}{where}: {problem['reason']}", err=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Datenbank auf den neuesten Stand bringen (Alembic)."""
    settings = _settings()

    async def work() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await _upgrade(engine)
        finally:
            await engine.dispose()

    run(work)
    typer.echo("Datenbank ist aktuell.")


@conference_app.command("import")
def conference_import(file: Annotated[Path, typer.Argument(help="conference TOML")]) -> None:
    """Konferenz aus TOML anlegen oder aktualisieren; gibt den Slug aus."""
    from orchestrator.conferences import service

    settings = _settings()
    from orchestrator.rooms.templates import load_templates

    spec = run_sync(lambda: service.parse_spec_file(file))
    templates = run_sync(lambda: load_templates(settings.room_templates_dir))

    async def work(session: AsyncSession) -> service.ImportOutcome:
        outcome = await service.import_spec(session, spec, templates)
        await _follow_up(session, settings, outcome.conference)
        return outcome

    outcome = run(lambda: _with_db(settings, work, migrate=True))
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

    settings = _settings()
    try:
        data = file.read_bytes()
    except OSError as error:
        raise fail(f"{file}: {error.strerror}") from None

    async def work(session: AsyncSession) -> importing.ImportReport:
        conference = await repository.get_by_slug(session, slug)
        report = await importing.import_file(
            session, conference, file.name, data, skip_invalid=skip_invalid
        )
        await _follow_up(session, settings, conference)
        return report

    report = run(lambda: _with_db(settings, work))
    _print_report(report.as_dict())
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
    settings = _settings()
    policy = overflow or settings.assignment_overflow
    if policy not in ("most_room", "waitlist"):
        raise fail("--overflow muss most_room oder waitlist sein.")
    report = run(lambda: _with_db(settings, lambda s: _assign(s, settings, slug, policy)))
    _print_assignment(report)


async def _assign(
    session: AsyncSession, settings: Settings, slug: str, policy: str
) -> dict[str, Any]:
    from orchestrator.conferences import repository
    from orchestrator.participants import assignment

    conference = await repository.get_by_slug(session, slug)
    mode: Literal["most_room", "waitlist"] = "waitlist" if policy == "waitlist" else "most_room"
    report = await assignment.run_assignment(session, conference, overflow=mode)
    await _follow_up(session, settings, conference)
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


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _serve(settings: Settings, host: str, port: int, *, with_worker: bool = True) -> None:
    import uvicorn

    from orchestrator.web.app import create_app

    if not port_free(host, port):
        raise fail(f"Port {port} auf {host} ist belegt; wählen Sie einen anderen mit --port.")
    if "base_url" not in settings.model_fields_set and port != 8000:
        settings.base_url = f"http://{host}:{port}"
    app = run_sync(lambda: create_app(settings, with_worker=with_worker))
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        access_log=False,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Adresse / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="ohne Hintergrunddienst (Versand, Erinnerungen)")
    ] = False,
) -> None:
    """Web-App starten (SQLite wird dabei automatisch migriert)."""
    settings = _settings()
    if settings.resolved_database_url.startswith("sqlite"):
        run(lambda: _with_db(settings, _noop, migrate=True))
    _serve(settings, host, port, with_worker=not no_worker)


async def _noop(_session: AsyncSession) -> None:
    return None


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Adresse / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    people: Annotated[int, typer.Option(help="Anzahl erzeugter Teilnehmender")] = 300,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="nur Daten anlegen")] = False,
) -> None:
    """Alles in einem: Datenbank, Beispielkonferenz, Teilnehmende, Zuteilung, Server."""
    from orchestrator.demo import setup

    settings = _settings()
    if "base_url" not in settings.model_fields_set:
        settings.base_url = f"http://{host}:{port}"
    if not no_serve and not port_free(host, port):
        raise fail(f"Port {port} auf {host} ist belegt; wählen Sie einen anderen mit --port.")
    summary = run(
        lambda: _with_db(settings, lambda s: setup.load(s, people, settings), migrate=True)
    )
    typer.echo(setup.banner(settings, summary))
    if not no_serve:
        _serve(settings, host, port)


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
    settings = _settings()
    body = run(lambda: _with_db(settings, lambda s: _attendance_export(s, slug, format_)))
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


@app.command()
def worker() -> None:
    """Hintergrunddienst allein: Versand und geplante Aufgaben (bis SIGTERM/Strg+C)."""
    from orchestrator.worker import run_worker, stop_on_signals

    settings = _settings()
    if settings.resolved_database_url.startswith("sqlite"):
        run(lambda: _with_db(settings, _noop, migrate=True))  # as serve does

    async def work() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(settings, stop_event=stop)

    run(work)


@invites_app.command("send")
def invites_send(
    slug: str,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="nur einreihen; der Hintergrunddienst versendet")
    ] = False,
) -> None:
    """Einladungen an alle noch nicht Eingeladenen einreihen und versenden (mit Fortschritt)."""
    settings = _settings()
    queued, counts = run(lambda: _send_invitations(settings, slug, deliver=not no_wait))
    typer.echo(f"{queued} Nachrichten eingereiht (Einladungen, Änderungen, Absagen).")
    if counts is not None:
        typer.echo(
            f"{counts['sent']} versendet, {counts['failed']} fehlgeschlagen, "
            f"{counts['retry']} warten auf einen neuen Versuch."
        )


async def _send_invitations(
    settings: Settings, slug: str, *, deliver: bool
) -> tuple[int, dict[str, int] | None]:
    """Queue chunk by chunk; with `deliver`, send in this process meanwhile, with progress.

    The sender starts on the first committed chunk while the rest are rendered, as the
    background worker would. Returns how many mails were queued and, when delivering,
    the conference's mails by state at the end.
    """
    from orchestrator.clock import system_clock
    from orchestrator.conferences import repository
    from orchestrator.invitations import service
    from orchestrator.mail.rendering import message_domain

    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            conference_id = (await repository.get_by_slug(session, slug)).id
        queueing = service.invite_everyone(
            sessions,
            slug,
            base_url=settings.base_url,
            message_domain=message_domain(settings.mail_from),
            sender=settings.mail_from,
            clock=system_clock,
        )
        if not deliver:
            invited, changes = await queueing
            return invited.queued + changes.queued, None
        invited, changes, counts = await _deliver_with_progress(
            settings, sessions, conference_id, queueing
        )
        return invited.queued + changes.queued, counts
    finally:
        await engine.dispose()


async def _deliver_with_progress(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    conference_id: int,
    queueing: Coroutine[Any, Any, tuple[Report, Report]],
) -> tuple[Report, Report, dict[str, int]]:
    """Run the queueing and an in-process sender together, drawing a progress bar."""
    from orchestrator.mail.outbox import counts_by_state
    from orchestrator.mail.worker import run_sender
    from orchestrator.participants.models import Person
    from orchestrator.worker import sender_options

    async def counts() -> dict[str, int]:
        async with sessions() as session:
            return await counts_by_state(session, conference_id)

    async with sessions() as session:
        pending = select(func.count()).where(
            Person.conference_id == conference_id, Person.invited_at.is_(None)
        )
        uninvited = (await session.execute(pending)).scalar_one()
    before = await counts()
    finished_before = before["sent"] + before["failed"] + before["retry"]
    stop = asyncio.Event()
    sender = asyncio.create_task(
        run_sender(settings, stop_event=stop, options=sender_options(settings))
    )
    queue = asyncio.create_task(queueing)
    try:
        expected = before["queued"] + before["sending"] + uninvited
        with typer.progressbar(length=max(expected, 1), label="Versand") as bar:
            done, current = 0, before
            while not sender.done():
                await asyncio.wait({queue}, timeout=0.2)
                current = await counts()
                finished = current["sent"] + current["failed"] + current["retry"] - finished_before
                bar.update(finished - done)
                done = finished
                remaining = current["queued"] + current["sending"]
                bar.length = max(done + remaining, 0 if queue.done() else expected, 1)
                if queue.done() and current["queued"] + current["sending"] == 0:
                    break
        invited, changes = await queue
    finally:
        if not queue.done():
            queue.cancel()
        stop.set()
        await sender
    return invited, changes, current


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
