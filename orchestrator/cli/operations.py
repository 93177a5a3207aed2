"""Running the service: `db upgrade`, `serve`, `worker` and the all-in-one `demo`."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator import logs
from orchestrator.cli.common import fail, load_settings, run, run_sync, upgrade_schema, with_db
from orchestrator.config import Settings
from orchestrator.db import create_engine

db_app = typer.Typer(help="Datenbank / database", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Datenbank auf den neuesten Stand bringen (Alembic)."""
    settings = load_settings()

    async def work() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade_schema(engine)
        finally:
            await engine.dispose()

    run(work)
    typer.echo("Datenbank ist aktuell.")


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


def _serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    with_worker: bool = True,
    banner: str | None = None,
) -> None:
    """Run the web app under uvicorn; with a banner (the demo), print it once it listens and
    keep uvicorn's own lines to warnings, so the banner is the last thing on the console."""
    import uvicorn

    from orchestrator.web.app import create_app

    if not port_free(host, port):
        raise fail(f"Port {port} auf {host} ist belegt; wählen Sie einen anderen mit --port.")
    if "base_url" not in settings.model_fields_set and port != 8000:
        settings.base_url = f"http://{host}:{port}"
    app = run_sync(lambda: create_app(settings, with_worker=with_worker))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning" if banner else "info",
        proxy_headers=True,
        access_log=False,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if banner and self.started:
                typer.echo(banner)

    Server(config).run()


def serve(
    host: Annotated[str, typer.Option(help="Adresse / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="ohne Hintergrunddienst (Versand, Erinnerungen)")
    ] = False,
) -> None:
    """Web-App starten (SQLite wird dabei automatisch migriert)."""
    settings = load_settings()
    if settings.resolved_database_url.startswith("sqlite"):
        run(lambda: with_db(settings, _noop, migrate=True))
    _serve(settings, host, port, with_worker=not no_worker)


async def _noop(_session: AsyncSession) -> None:
    return None


def demo(
    host: Annotated[str, typer.Option(help="Adresse / bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    people: Annotated[int, typer.Option(help="Anzahl erzeugter Teilnehmender")] = 300,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="nur Daten anlegen")] = False,
) -> None:
    """Alles in einem: Datenbank, Beispielkonferenz, Teilnehmende, Zuteilung, Server."""
    from orchestrator.demo import setup

    settings = demo_settings(load_settings(), host, port)
    if "log_level" not in settings.model_fields_set:
        logs.configure("WARNING")  # per-mail and per-job lines would bury the banner
    if not no_serve and not port_free(host, port):
        raise fail(f"Port {port} auf {host} ist belegt; wählen Sie einen anderen mit --port.")
    summary = run(
        lambda: with_db(settings, lambda s: setup.load(s, people, settings), migrate=True)
    )
    if no_serve:
        typer.echo(setup.banner(settings, summary))
        return
    _serve(settings, host, port, banner=setup.banner(settings, summary))


def demo_settings(settings: Settings, host: str, port: int) -> Settings:
    """The demo's defaults for what the environment leaves open: its own address, and no
    census cross-check against a prosody nobody configured (it would only log that it is
    unreachable)."""
    if "base_url" not in settings.model_fields_set:
        settings.base_url = f"http://{host}:{port}"
    if "jitsi_prosody_url" not in settings.model_fields_set:
        settings.attendance_census_seconds = None
    return settings


def worker() -> None:
    """Hintergrunddienst allein: Versand und geplante Aufgaben (bis SIGTERM/Strg+C)."""
    from orchestrator.worker import run_worker, stop_on_signals

    settings = load_settings()
    if settings.resolved_database_url.startswith("sqlite"):
        run(lambda: with_db(settings, _noop, migrate=True))  # as serve does

    async def work() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(settings, stop_event=stop)

    run(work)
