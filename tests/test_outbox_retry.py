"""Sending failed mail again (mail.outbox.requeue_failed), on SQLite and PostgreSQL: only the
failed rows of the one conference, queued and due now with a fresh count of attempts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.mail.models import OutboxMessage, OutboxState
from orchestrator.mail.outbox import Outgoing, enqueue_many, requeue_failed
from orchestrator.mail.rendering import Rendered, build_message, mailbox
from tests.invitation_helpers import conference_with_people
from tests.smtp_server import FROM
from tests.test_staff_login import berlin


async def _outbox(session: AsyncSession) -> list[OutboxMessage]:
    session.expire_all()
    rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.recipient))
    return list(rows)


def _message(number: int, conference_id: int | None) -> Outgoing:
    rendered = Rendered(subject=f"Nachricht {number}", text="Text\n", html="<p>HTML</p>")
    built = build_message(
        rendered,
        sender=FROM,
        recipient=mailbox("Test", f"p{number}@example.org"),
        calendar=None,
        method=None,
        language="de",
    )
    return Outgoing("invitation", f"test:{number}", f"p{number}@example.org", built, conference_id)


@pytest.mark.asyncio
async def test_requeue_failed_touches_only_failed_rows_of_the_conference(
    session: AsyncSession,
) -> None:
    conference_id = (await conference_with_people(session)).id
    now = berlin(9, 0, day=1)
    items = [_message(n, conference_id) for n in range(3)] + [_message(9, None)]
    await enqueue_many(session, items, message_domain="kreis.example", now=now)
    rows = {row.recipient: row for row in await _outbox(session)}
    for address in ("p0@example.org", "p1@example.org", "p9@example.org"):
        rows[address].state, rows[address].attempts = OutboxState.FAILED, 10
        rows[address].last_error = "550 nein"
    rows["p2@example.org"].state = OutboxState.SENT
    await session.commit()
    later = now + timedelta(hours=2)
    assert await requeue_failed(session, conference_id, later, [rows["p1@example.org"].id]) == 1
    assert await requeue_failed(session, conference_id, later) == 1  # p0; p9 is not ours
    assert await requeue_failed(session, conference_id, later) == 0
    await session.commit()
    after = {row.recipient: row for row in await _outbox(session)}
    for address in ("p0@example.org", "p1@example.org"):
        row = after[address]
        assert (row.state, row.attempts, row.next_attempt_at) == (OutboxState.QUEUED, 0, later)
    assert after["p9@example.org"].state is OutboxState.FAILED
    assert after["p2@example.org"].state is OutboxState.SENT
