"""The outbox relay: hands pending messages to a publisher, outside any command.

A relay claims due messages (``pending`` and due, or ``processing`` with an expired lease)
in a short transaction, marking them ``processing`` with a lease; on PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several relays share the work. It then publishes each message
and records the outcome: ``done``, or back to ``pending`` with a capped exponential back-off
with jitter, or ``dead`` after ``max_attempts``. A crashed relay's claims come back when their
lease runs out, so delivery is at-least-once: consumers dedupe on the message id. An outcome
is recorded only under the lease it was claimed with: a relay whose lease ran out and whose
message another relay claimed leaves the row to that relay.
A failing publisher only ever affects this loop, never the commands that wrote the events.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

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
    #: outcomes not recorded: the lease ran out and another relay had claimed the message
    lease_lost: int = 0


Outcome = Literal["published", "retried", "dead", "lease_lost"]


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
        deliveries = self.claim()
        outcomes: Counter[Outcome] = Counter()
        for delivery in deliveries:
            try:
                self.publisher.publish(delivery)
            except Exception as exc:
                outcomes[self._failed(delivery, exc)] += 1
            else:
                outcomes[self._done(delivery)] += 1
        return RelayStats(
            len(deliveries),
            outcomes["published"],
            outcomes["retried"],
            outcomes["dead"],
            outcomes["lease_lost"],
        )

    def _done(self, delivery: Delivery) -> Outcome:
        if not mark_done(self.db, delivery, now=self.clock()):
            return self._lease_lost(delivery, "published")
        return "published"

    def _failed(self, delivery: Delivery, exc: Exception) -> Outcome:
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
