"""The outbox relay: hands pending messages to a publisher, outside any command.

A relay claims due messages (``pending`` and due, or ``processing`` with an expired lease)
in a short transaction, marking them ``processing`` with a lease; on PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several relays share the work. It then publishes each message
and records the outcome: ``done``, or back to ``pending`` with a capped exponential back-off
with jitter, or ``dead`` after ``max_attempts``. A crashed relay's claims come back when their
lease runs out, so delivery is at-least-once: consumers dedupe on the message id.
A failing publisher only ever affects this loop, never the commands that wrote the events.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from seatledger.projections.db import ReadModelDB
from seatledger.projections.outbox import Delivery, claim_due, mark_done, mark_failed
from seatledger.projections.runner import Reporter, failure_backoff


class Publisher(Protocol):
    def publish(self, delivery: Delivery) -> None:
        """Deliver one message; raise to have it retried later."""


class LoggingPublisher:
    """The default publisher: one structured log line per message."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("seatledger.outbox")

    def publish(self, delivery: Delivery) -> None:
        self.logger.info(
            "%s %s",
            delivery.type,
            delivery.message_id,
            extra={
                "telemetry": "outbox.published",
                "fields": {
                    "message_id": delivery.message_id,
                    "type": delivery.type,
                    "dedupe_key": delivery.dedupe_key,
                    "payload": delivery.payload,
                },
            },
        )


@dataclass(frozen=True)
class RelayStats:
    claimed: int = 0
    published: int = 0
    retried: int = 0
    dead: int = 0


class Relay:
    def __init__(
        self,
        db: ReadModelDB,
        publisher: Publisher,
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

    def backoff(self, attempts: int) -> timedelta:
        """Capped exponential back-off with jitter: a random point in the upper half of
        ``min(max_delay, base * 2**(attempts - 1))``."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return timedelta(seconds=ceiling * self.rng.uniform(0.5, 1.0))

    def claim(self) -> list[Delivery]:
        now = self.clock()
        return claim_due(self.db, now=now, lease_until=now + self.lease, limit=self.batch_size)

    def run_once(self) -> RelayStats:
        """Claim one batch, publish it, record every outcome."""
        deliveries = self.claim()
        published = retried = dead = 0
        for delivery in deliveries:
            try:
                self.publisher.publish(delivery)
            except Exception as exc:
                if self._failed(delivery, exc):
                    dead += 1
                else:
                    retried += 1
            else:
                self._done(delivery)
                published += 1
        return RelayStats(len(deliveries), published, retried, dead)

    def _done(self, delivery: Delivery) -> None:
        mark_done(self.db, delivery, now=self.clock())

    def _failed(self, delivery: Delivery, exc: Exception) -> bool:
        """Record a failed attempt; returns True if the message is now dead."""
        is_dead = delivery.attempt >= self.max_attempts
        next_attempt = self.clock() + self.backoff(delivery.attempt)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        mark_failed(self.db, delivery, retry_at=None if is_dead else next_attempt, error=error)
        self.telemetry.emit(
            "outbox.dead" if is_dead else "outbox.retry",
            level=logging.ERROR if is_dead else logging.WARNING,
            message_id=delivery.message_id,
            type=delivery.type,
            attempt=delivery.attempt,
            error=error,
        )
        return is_dead

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
