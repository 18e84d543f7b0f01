"""The outbox relay: hands pending messages to a publisher, outside any command.

A relay claims due messages (``pending`` and due, or ``processing`` with an expired lease)
in a short transaction, marking them ``processing`` with a lease; on PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several relays share the work (see
:mod:`seatledger.projections.deliveries`). It hands the batch to the publisher, which sends
it asynchronously (a bounded number in flight, each booking's messages one after the other:
:func:`in_booking_order`) and answers one outcome per message. Then the relay records them:
``done`` once the broker acknowledged, or back to ``pending`` with a capped exponential
back-off with jitter, or ``dead`` after ``max_attempts``; a message whose earlier message of
the same booking failed in the batch was not sent and is handed back untried. A crashed
relay's claims come back when their lease runs out, so delivery is at-least-once: consumers
dedupe on the message id. An outcome is recorded only under the lease it was claimed with.
A failing publisher only ever affects this loop, never the commands that wrote the events.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from seatledger.projections.db import ReadModelDB
from seatledger.projections.deliveries import (
    Delivery,
    claim_due,
    mark_done_many,
    mark_failed,
    release,
)
from seatledger.projections.runner import Reporter, failure_backoff


class Deferred(Exception):  # noqa: N818 - an outcome, not an error
    """Not sent: an earlier message of the same booking failed in this batch, and sending
    this one would overtake it. Handed back untried (no attempt counted)."""


#: A publisher's answer for one message: None once the broker acknowledged it, else why not.
Result = BaseException | None


@dataclass(frozen=True)
class PublisherInfo:
    """What a publisher is, for logs and ``status``: its name (recorded with every message
    it delivered), where it delivers (never credentials) and whether it delivers at all."""

    name: str
    target: str
    delivers: bool = True


@runtime_checkable
class Publisher(Protocol):
    """A batch, asynchronous publisher (``seatledger.application.publishers`` has the
    logging, NATS JetStream and webhook ones)."""

    @property
    def info(self) -> PublisherInfo: ...

    async def publish_batch(self, batch: Sequence[Delivery]) -> Sequence[Result]:
        """Send a batch (in log order) and answer one result per message, in order. A
        message must not overtake an earlier message of its booking: send them one after
        the other and stop at the first failure (:func:`in_booking_order` does this)."""

    async def close(self) -> None:
        """Release connections; the relay calls it once, when it stops."""


class SimplePublisher(Protocol):
    """The simplest publisher: synchronous, one message at a time, raising on failure.
    The relay calls it in log order (a failed booking's later messages are deferred)."""

    def publish(self, delivery: Delivery) -> None: ...


async def in_booking_order(
    batch: Sequence[Delivery],
    send: Callable[[Delivery], Awaitable[object]],
    *,
    max_in_flight: int,
) -> list[Result]:
    """Send a batch concurrently, at most ``max_in_flight`` messages awaiting their answer at
    once, each booking's messages one after the other in log order; after a booking's first
    failure its later messages are :class:`Deferred`. One result per message, in order."""
    chains: dict[tuple[str, str], list[int]] = {}
    for index, delivery in enumerate(batch):
        chains.setdefault((delivery.restaurant_id, delivery.booking_id), []).append(index)
    results: list[Result] = [None] * len(batch)
    slots = asyncio.Semaphore(max_in_flight)

    async def chain(indices: list[int]) -> None:
        failed: str | None = None
        for index in indices:
            if failed is not None:
                results[index] = Deferred(f"after the failed message {failed}")
                continue
            async with slots:
                try:
                    await send(batch[index])
                except Exception as exc:
                    results[index] = exc
                    failed = batch[index].message_id

    await asyncio.gather(*(chain(indices) for indices in chains.values()))
    return results


def _in_booking_order_sync(publisher: SimplePublisher, batch: Sequence[Delivery]) -> list[Result]:
    """:func:`in_booking_order` for a :class:`SimplePublisher`: one message at a time."""
    failed: dict[tuple[str, str], str] = {}
    results: list[Result] = []
    for delivery in batch:
        key = (delivery.restaurant_id, delivery.booking_id)
        if key in failed:
            results.append(Deferred(f"after the failed message {failed[key]}"))
            continue
        try:
            publisher.publish(delivery)
        except Exception as exc:
            failed[key] = delivery.message_id
            results.append(exc)
        else:
            results.append(None)
    return results


@dataclass(frozen=True)
class RelayStats:
    claimed: int = 0
    published: int = 0
    retried: int = 0
    dead: int = 0
    #: outcomes not recorded: the lease ran out and another relay had claimed the message
    lease_lost: int = 0
    #: handed back untried: an earlier message of the booking failed in the batch
    deferred: int = 0


Outcome = Literal["published", "retried", "dead", "lease_lost", "deferred"]


class Relay:
    def __init__(
        self,
        db: ReadModelDB,
        publisher: Publisher | SimplePublisher,
        telemetry: Reporter,
        *,
        batch_size: int = 100,
        max_attempts: int = 10,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        lease_seconds: float = 60.0,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.telemetry = telemetry
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()
        #: the event loop an asynchronous publisher's connections live in, across batches
        self._loop: asyncio.Runner | None = None

    @property
    def info(self) -> PublisherInfo:
        if isinstance(self.publisher, Publisher):
            return self.publisher.info
        return PublisherInfo(type(self.publisher).__name__, "custom")

    def backoff(self, attempts: int) -> timedelta:
        """Capped exponential back-off with jitter: a random point in the upper half of
        ``min(max_delay, base * 2**(attempts - 1))``."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return timedelta(seconds=ceiling * self.rng.uniform(0.5, 1.0))

    def claim(self) -> list[Delivery]:
        """Claim a batch under a lease of this claim's own (a fresh token)."""
        now = self.clock()
        return claim_due(
            self.db,
            now=now,
            lease_until=now + self.lease,
            lease_token=uuid.uuid4().hex,
            limit=self.batch_size,
        )

    def run_once(self) -> RelayStats:
        """Claim one batch, publish it, record every outcome (under the claim's lease)."""
        started = time.perf_counter()
        deliveries = self.claim()
        if not deliveries:
            return RelayStats()
        results = self._publish(deliveries)
        if len(results) != len(deliveries):
            raise RuntimeError(f"{self.info.name}: {len(results)} results for {len(deliveries)}")
        outcomes = self._record(deliveries, results)
        stats = RelayStats(
            len(deliveries),
            outcomes["published"],
            outcomes["retried"],
            outcomes["dead"],
            outcomes["lease_lost"],
            outcomes["deferred"],
        )
        self.telemetry.emit(
            "outbox.batch",
            level=logging.DEBUG,
            publisher=self.info.name,
            seconds=round(time.perf_counter() - started, 6),
            **stats.__dict__,
        )
        return stats

    def _publish(self, deliveries: Sequence[Delivery]) -> Sequence[Result]:
        if not isinstance(self.publisher, Publisher):
            return _in_booking_order_sync(self.publisher, deliveries)
        if self._loop is None:
            self._loop = asyncio.Runner()
        return self._loop.run(self.publisher.publish_batch(deliveries))

    def close(self) -> None:
        """Close the publisher (its connections) and the relay's event loop."""
        loop, self._loop = self._loop, None
        if isinstance(self.publisher, Publisher):
            runner = loop or asyncio.Runner()
            try:
                runner.run(self.publisher.close())
            finally:
                runner.close()
        elif loop is not None:
            loop.close()

    def _record(
        self, deliveries: Sequence[Delivery], results: Sequence[Result]
    ) -> Counter[Outcome]:
        outcomes: Counter[Outcome] = Counter()
        sent = [d for d, result in zip(deliveries, results, strict=True) if result is None]
        recorded = mark_done_many(self.db, sent, now=self.clock(), via=self.info.name)
        for delivery in sent:
            if delivery.message_id in recorded:
                outcomes["published"] += 1
                self.telemetry.emit(
                    "outbox.delivered",
                    level=logging.DEBUG,
                    message_id=delivery.message_id,
                    type=delivery.type,
                    attempt=delivery.attempt,
                    publisher=self.info.name,
                )
            else:
                outcomes[self._lease_lost(delivery, "published")] += 1
        for delivery, result in zip(deliveries, results, strict=True):
            if isinstance(result, Deferred):
                if release(self.db, delivery):
                    outcomes["deferred"] += 1
                else:
                    outcomes[self._lease_lost(delivery, "deferred")] += 1
            elif result is not None:
                outcomes[self._failed(delivery, result)] += 1
        return outcomes

    def _failed(self, delivery: Delivery, exc: BaseException) -> Outcome:
        """Record a failed attempt: retried later, or dead after ``max_attempts``."""
        is_dead = delivery.attempt >= self.max_attempts
        next_attempt = self.clock() + self.backoff(delivery.attempt)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        recorded = mark_failed(
            self.db, delivery, retry_at=None if is_dead else next_attempt, error=error
        )
        if not recorded:
            return self._lease_lost(delivery, "failed")
        self.telemetry.emit(
            "outbox.dead" if is_dead else "outbox.retry",
            level=logging.ERROR if is_dead else logging.WARNING,
            message_id=delivery.message_id,
            type=delivery.type,
            attempt=delivery.attempt,
            publisher=self.info.name,
            error=error,
        )
        return "dead" if is_dead else "retried"

    def _lease_lost(self, delivery: Delivery, attempt_outcome: str) -> Outcome:
        """Another relay claimed the message after this relay's lease ran out: it owns the
        row now, so this outcome is not recorded (the lease is too short for the publisher)."""
        self.telemetry.emit(
            "outbox.lease_lost",
            level=logging.WARNING,
            message_id=delivery.message_id,
            type=delivery.type,
            attempt=delivery.attempt,
            outcome=attempt_outcome,
        )
        return "lease_lost"

    def serve(self, stop: threading.Event, *, idle_wait: float = 1.0) -> None:
        """Relay until stopped; waits ``idle_wait`` whenever nothing was due."""
        failures = 0
        while not stop.is_set():
            try:
                stats = self.run_once()
                failures = 0
            except Exception as exc:
                failures += 1
                self.telemetry.emit(
                    "outbox.relay_failed",
                    level=logging.ERROR,
                    error=f"{type(exc).__name__}: {exc}",
                    failures=failures,
                )
                stop.wait(failure_backoff(failures))
                continue
            if stats.claimed == 0:
                stop.wait(idle_wait)
