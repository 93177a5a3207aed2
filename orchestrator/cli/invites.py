"""`invites send`: queue the invitations and, unless --no-wait, send them with progress."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.cli.common import fail, load_settings, run
from orchestrator.config import Settings
from orchestrator.db import create_engine, session_factory

if TYPE_CHECKING:
    from orchestrator.invitations.service import Report

invites_app = typer.Typer(help="Einladungen / invitations", no_args_is_help=True)


_REASONS = 10  # distinct failure reasons printed


@dataclass
class _Outcome:
    """What a run queued, the conference's mails by state, and why mails failed."""

    queued: int
    counts: dict[str, int]
    failed_before: int
    reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def failed_now(self) -> int:
        return self.counts["failed"] - self.failed_before


@invites_app.command("send")
def invites_send(
    slug: str,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="nur einreihen; der Hintergrunddienst versendet")
    ] = False,
) -> None:
    """Einladungen an alle noch nicht Eingeladenen einreihen und versenden (mit Fortschritt).

    Exit-Status 1, wenn Nachrichten dieses Laufs fehlgeschlagen sind (Gründe in der Ausgabe).
    """
    settings = load_settings()
    outcome = run(lambda: _send_invitations(settings, slug, deliver=not no_wait))
    counts = outcome.counts
    typer.echo(f"{outcome.queued} Nachrichten eingereiht (Einladungen, Änderungen, Absagen).")
    if not no_wait:
        typer.echo(
            f"{counts['sent']} versendet, {counts['failed']} fehlgeschlagen, "
            f"{counts['retry']} warten auf einen neuen Versuch."
        )
    if outcome.reasons:
        typer.echo(f"Fehlgeschlagen / failed: {counts['failed']}")
        for reason, count in outcome.reasons[:_REASONS]:
            typer.echo(f"  {count} × {reason}")
        if len(outcome.reasons) > _REASONS:
            more = len(outcome.reasons) - _REASONS
            typer.echo(f"  … {more} weitere Gründe / more reasons (GET …/invitations)")
    if outcome.failed_now > 0:
        n = outcome.failed_now
        raise fail(f"{n} Nachricht(en) dieses Laufs fehlgeschlagen / {n} message(s) failed.")


async def _send_invitations(settings: Settings, slug: str, *, deliver: bool) -> _Outcome:
    """Queue chunk by chunk; with `deliver`, send in this process meanwhile, with progress.

    The sender starts on the first committed chunk while the rest are rendered, as the
    background worker would.
    """
    from orchestrator.clock import system_clock
    from orchestrator.conferences import repository
    from orchestrator.invitations import runs
    from orchestrator.mail.outbox import counts_by_state, failure_reasons
    from orchestrator.mail.rendering import message_domain

    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            conference_id = (await repository.get_by_slug(session, slug)).id
            failed_before = (await counts_by_state(session, conference_id))["failed"]
        queueing = runs.invite_everyone(
            sessions,
            slug,
            base_url=settings.base_url,
            message_domain=message_domain(settings.mail_from),
            sender=settings.mail_from,
            clock=system_clock,
        )
        if deliver:
            invited, changes, _ = await _deliver_with_progress(
                settings, sessions, conference_id, queueing
            )
        else:
            invited, changes = await queueing
        async with sessions() as session:
            counts = await counts_by_state(session, conference_id)
            reasons = await failure_reasons(session, conference_id)
        return _Outcome(invited.queued + changes.queued, counts, failed_before, reasons)
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
