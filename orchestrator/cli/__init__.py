"""The `orchestrator` command (SPEC §5): one-line reasons and exit 1 on failure.

The commands live by domain in this package: `operations` (db, serve, worker, demo),
`conferences` (conference, participants, forums), `invites` and `attendance`; `common`
holds what they share (settings, the database, error reporting).
"""

from __future__ import annotations

import sys

import typer

from orchestrator.cli import attendance, conferences, invites, operations, users

app = typer.Typer(
    help="Konferenz-Orchestrator: hybride Konferenzen auf Jitsi Meet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(operations.serve)
app.command()(operations.demo)
app.command()(operations.worker)
app.add_typer(operations.db_app, name="db")
app.add_typer(conferences.conference_app, name="conference")
app.add_typer(conferences.participants_app, name="participants")
app.add_typer(conferences.forums_app, name="forums")
app.add_typer(invites.invites_app, name="invites")
app.add_typer(attendance.attendance_app, name="attendance")
app.add_typer(users.users_app, name="users")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
