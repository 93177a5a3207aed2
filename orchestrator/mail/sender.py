"""The outbox sender: claim due rows atomically, send them, record each result, recover."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import Table, Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.clock import Clock, system_clock
from orchestrator.db import transaction
from orchestrator.mail.models import OutboxMessage, OutboxState

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
DUE_STATES = (OutboxState.QUEUED, OutboxState.RETRY)
# Core statements on the table: the ORM's per-statement bookkeeping is not needed here.
_outbox = cast(Table, OutboxMessage.__table__)
_c = _outbox.c


class DeliveryError(Exception):
    """A message could not be delivered; `reason` is what the server (or socket) said."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(DeliveryError):  # noqa: N818 (named as in the outbox design)
    """Try again later: 4xx replies, refused connections, timeouts."""


class PermanentFailure(DeliveryError):  # noqa: N818
    """Never try again: 5xx replies such as "550 5.1.1 User unknown"."""


class Transport(Protocol):
    """Delivers one complete RFC 5322 message to one recipient."""

    async def send(self, message: bytes, recipient: str, sender: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Claimed:
    """One row this sender owns until it records a result (or its lease runs out)."""

    id: int
    recipient: str
    message_id: str
    body: bytes
    attempts: int
    claimed_at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: first, 2 x first, 4 x first ... at most `cap`; then give up."""

    first: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 10

    def delay(self, attempts: int) -> timedelta:
        """Wait before the next try after `attempts` failed ones."""
        exponent = min(max(attempts - 1, 0), 30)
        return min(self.first * (1 << exponent), self.cap)


async def claim(sessions: Sessions, now: datetime, limit: int) -> list[Claimed]:
    """Move up to `limit` due rows to `sending` in one statement; no two senders get one row."""
    due = (
        select(_c.id)
        .where(_c.state.in_(DUE_STATES), _c.next_attempt_at <= now)
        .order_by(_c.next_attempt_at, _c.id)
        .limit(limit)
        # PostgreSQL: rows another sender has locked are skipped; SQLite ignores the clause
        # and serialises the whole UPDATE under its single writer lock instead.
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(_outbox)
        .where(_c.id.in_(due.scalar_subquery()))
        .values(state=OutboxState.SENDING, claimed_at=now)
        .returning(_c.id, _c.recipient, _c.message_id, _c.body, _c.attempts)
    )
    async with transaction(sessions) as session:
        rows = (await session.execute(statement)).all()
    claimed = [Claimed(row[0], row[1], row[2], row[3], row[4], now) for row in rows]
    return sorted(claimed, key=lambda item: item.id)


async def recover_stale(sessions: Sessions, now: datetime, lease: timedelta) -> int:
    """Rows left in `sending` longer than the lease (a dead sender) become due again."""
    statement = (
        update(_outbox)
        .where(_c.state == OutboxState.SENDING, _c.claimed_at < now - lease)
        .values(state=OutboxState.RETRY, next_attempt_at=now, claimed_at=None)
        .returning(_c.id)
    )
    async with transaction(sessions) as session:
        ids = list((await session.execute(statement)).scalars())
    if ids:
        log.warning("mail.recovered", extra={"count": len(ids), "outbox_ids": ids[:20]})
    return len(ids)


async def release(sessions: Sessions, items: Sequence[Claimed], now: datetime) -> None:
    """Give back claimed rows that were never tried (the sender is stopping)."""
    async with transaction(sessions) as session:
        for item in items:
            await session.execute(_owned(item).values(state=OutboxState.RETRY, next_attempt_at=now))


def _owned(item: Claimed) -> Update:
    """An UPDATE of this row only while this claim still holds it (not recovered meanwhile)."""
    mine = (_c.id == item.id, _c.state == OutboxState.SENDING, _c.claimed_at == item.claimed_at)
    return update(_outbox).where(*mine).values(claimed_at=None)


# Delivered is the truth even if the row was recovered meanwhile: mark it sent regardless.
_SENT = (
    update(_outbox)
    .where(_c.id == bindparam("row_id"), _c.state != OutboxState.SENT)
    .values(
        state=OutboxState.SENT,
        sent_at=bindparam("at"),
        attempts=bindparam("tries"),
        claimed_at=None,
        last_error="",
    )
)


@dataclass(frozen=True)
class Result:
    """How one attempt went; no failure means the server accepted the message."""

    item: Claimed
    at: datetime
    failure: DeliveryError | None = None

    def state(self, policy: RetryPolicy) -> OutboxState:
        """sent; failed (5xx, or out of attempts); else retry."""
        if self.failure is None:
            return OutboxState.SENT
        permanent = isinstance(self.failure, PermanentFailure)
        if permanent or self.item.attempts + 1 >= policy.max_attempts:
            return OutboxState.FAILED
        return OutboxState.RETRY


def _unsent(result: Result, state: OutboxState, policy: RetryPolicy) -> Update:
    attempts = result.item.attempts + 1
    reason = result.failure.reason[:2000] if result.failure else ""
    statement = _owned(result.item).values(state=state, attempts=attempts, last_error=reason)
    if state is OutboxState.RETRY:
        statement = statement.values(next_attempt_at=result.at + policy.delay(attempts))
    return statement


async def record_results(
    sessions: Sessions, results: Sequence[Result], policy: RetryPolicy | None = None
) -> list[OutboxState]:
    """Store many attempts in one transaction; returns each row's new state."""
    policy = policy or RetryPolicy()
    states = [result.state(policy) for result in results]
    sent = [
        {"row_id": result.item.id, "at": result.at, "tries": result.item.attempts + 1}
        for result, state in zip(results, states, strict=True)
        if state is OutboxState.SENT
    ]
    async with transaction(sessions) as session:
        if sent:
            await session.execute(_SENT, sent)
        for result, state in zip(results, states, strict=True):
            if state is not OutboxState.SENT:
                await session.execute(_unsent(result, state, policy))
    return states


async def record_result(
    sessions: Sessions,
    item: Claimed,
    now: datetime,
    failure: DeliveryError | None,
    policy: RetryPolicy | None = None,
) -> OutboxState:
    """Store how one attempt went: sent, retry later (backoff) or failed with the reason."""
    [state] = await record_results(sessions, [Result(item, now, failure)], policy)
    return state


class _GroupCommit:
    """Results of concurrent workers written together: one transaction for all that wait."""

    def __init__(self, sessions: Sessions, policy: RetryPolicy, linger: float = 0.005) -> None:
        self.sessions = sessions
        self.policy = policy
        self.linger = linger  # longest wait for workers still talking to the server
        self.sending = 0  # workers between taking a row and handing in its result
        self._pending: list[tuple[Result, asyncio.Future[OutboxState]]] = []
        self._lock = asyncio.Lock()
        self._arrived = asyncio.Event()

    async def record(self, result: Result) -> OutboxState:
        """Returns once this result is committed (perhaps by another worker's flush)."""
        future: asyncio.Future[OutboxState] = asyncio.get_running_loop().create_future()
        self._pending.append((result, future))
        self._arrived.set()
        async with self._lock:
            if not future.done():
                await self._gather()
                await self._flush()
        return future.result()

    async def _gather(self) -> None:
        # Fewer, larger transactions: wait briefly for workers whose replies are due now.
        deadline = asyncio.get_running_loop().time() + self.linger
        while self.sending > 0:
            self._arrived.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            states = await record_results(self.sessions, [r for r, _ in batch], self.policy)
        except Exception as error:  # every waiter, this one too, raises it from .result()
            for _, future in batch:
                future.set_exception(error)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), state in zip(batch, states, strict=True):
            future.set_result(state)


class TokenBucket:
    """At most `rate` messages per second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.burst = rate, max(1, burst)
        self._tokens, self._last = float(self.burst), time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Wait until one message may go out."""
        async with self._lock:
            self._refill()
            while self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


@dataclass(frozen=True)
class SenderOptions:
    """How hard the sender pushes, and how long a claim may stay unanswered."""

    concurrency: int = 4
    batch_size: int = 100
    rate: float | None = None  # messages per second; None: as fast as the server takes them
    lease: timedelta = timedelta(minutes=10)
    poll_interval: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class OutboxSender:
    """The loop: recover stale claims, claim a batch, send with bounded concurrency, record."""

    def __init__(
        self,
        sessions: Sessions,
        transport: Transport,
        envelope_from: str,
        *,
        options: SenderOptions | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.envelope_from = envelope_from
        self.options = options or SenderOptions()
        self.clock = clock
        rate = self.options.rate
        self._bucket = TokenBucket(rate) if rate else None
        self._recorder = _GroupCommit(sessions, self.options.retry)
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()

    def stop(self) -> None:
        """Finish the messages in flight, give back the rest, and leave `run`."""
        self._stopping.set()
        self._wakeup.set()

    def notify(self) -> None:
        """New mail was queued: stop idling now instead of at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Send until `stop()`; database or transport trouble is logged and retried."""
        while not self._stopping.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("mail.sender_error")
                done = 0
            if done == 0:  # idle: poll again later, or sooner when notified
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.options.poll_interval)
                self._wakeup.clear()

    async def run_once(self) -> int:
        """One round: recover, claim one batch, deliver it; returns how many were claimed."""
        now = self.clock()
        await recover_stale(self.sessions, now, self.options.lease)
        batch = await claim(self.sessions, now, self._claim_limit())
        if batch:
            await self._deliver(batch)
        return len(batch)

    def _claim_limit(self) -> int:
        """Under a rate limit, claim no more than can go out in half a lease."""
        options = self.options
        if not options.rate:
            return options.batch_size
        affordable = int(options.rate * options.lease.total_seconds() / 2)
        return max(1, min(options.batch_size, affordable))

    async def _deliver(self, batch: list[Claimed]) -> None:
        pending = deque(batch)
        workers = min(self.options.concurrency, len(batch))
        outcomes: Counter[str] = Counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(self._work(pending, outcomes))
        if pending:
            await release(self.sessions, list(pending), self.clock())
        # One line a batch at INFO (each message is at DEBUG, failures at WARNING/ERROR).
        log.info("mail.batch_delivered", extra={"claimed": len(batch), **outcomes})

    async def _work(self, pending: deque[Claimed], outcomes: Counter[str]) -> None:
        # Each worker waits until its result is committed before taking the next row, so a
        # kill leaves at most `concurrency` messages delivered but not marked sent.
        while pending and not self._stopping.is_set():
            item = pending.popleft()
            if self._bucket is not None:
                await self._bucket.acquire()
            self._recorder.sending += 1
            try:
                failure = await self._attempt(item)
            finally:
                self._recorder.sending -= 1
            state = await self._recorder.record(Result(item, self.clock(), failure))
            _log_result(item, state, failure)
            outcomes[state.value] += 1

    async def _attempt(self, item: Claimed) -> DeliveryError | None:
        try:
            await self.transport.send(item.body, item.recipient, self.envelope_from)
        except DeliveryError as failure:
            return failure
        except Exception as error:  # a bug or an unforeseen error: retry, never lose the row
            log.exception("mail.transport_error", extra={"outbox_id": item.id})
            return TemporaryFailure(f"{type(error).__name__}: {error}")
        return None


_LEVELS = {OutboxState.SENT: logging.DEBUG, OutboxState.RETRY: logging.WARNING}


def _log_result(item: Claimed, state: OutboxState, failure: DeliveryError | None) -> None:
    """mail.sent, mail.retry or mail.failed, with the server's reason when there is one."""
    fields = {"outbox_id": item.id, "message_id": item.message_id, "attempts": item.attempts + 1}
    if failure is not None:
        fields["reason"] = failure.reason
    log.log(_LEVELS.get(state, logging.ERROR), f"mail.{state.value}", extra=fields)
