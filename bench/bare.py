"""The baseline of the command benchmarks: the bare ``eventsourcing`` library on the same store.

One command of the baseline is ``repository.get`` of an aggregate, one event triggered, and
``save``: what any event-sourced command does at least (one read of the aggregate's events,
one insert with the library's table lock and NOTIFY on PostgreSQL). The aggregates are made
beforehand, one per command (each has only its creation event when it is read), like the
bookings of the measured side. Library defaults otherwise: no aggregate cache, the
library's own recorders (``eventsourcing.postgres`` / ``eventsourcing.sqlite``) and tables.
"""

from __future__ import annotations

import time
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from seatledger.application.settings import Settings


class Counter(Aggregate):
    """The smallest aggregate that still records something per command."""

    def __init__(self) -> None:
        self.count = 0

    @event("Bumped")
    def bump(self) -> None:
        self.count += 1


class BareApplication(Application[UUID]):
    name = "BenchBare"


def bare_env(settings: Settings) -> dict[str, str]:
    """The library's own persistence module for the store the settings name (same server,
    same schema or file); the library makes its tables."""
    env = {
        key: value
        for key, value in settings.eventsourcing_env().items()
        if not key.startswith("AGGREGATE_CACHE") and key != "POSTGRES_EXTRA_CONNINFO"
    }
    env["PERSISTENCE_MODULE"] = (
        "eventsourcing.postgres" if settings.persistence == "postgres" else "eventsourcing.sqlite"
    )
    env["CREATE_TABLE"] = "y"
    if settings.persistence == "sqlite":
        env["SQLITE_DBNAME"] = str(settings.sqlite_path.with_name("bare.db"))
    return env


class Bare:
    """``prepare(n)`` the aggregates, then ``run(k)`` commands, timed one by one."""

    def __init__(self, settings: Settings) -> None:
        self.app = BareApplication(env=bare_env(settings))
        self._ids: list[UUID] = []

    def prepare(self, count: int) -> None:
        aggregates = [Counter() for _ in range(count)]
        for first in range(0, count, 500):
            self.app.save(*aggregates[first : first + 500])
        self._ids.extend(a.id for a in aggregates)

    def run(self, count: int) -> list[float]:
        """``count`` get+bump+save commands on unused aggregates; seconds of each."""
        if count > len(self._ids):
            raise ValueError("prepare more aggregates first")
        ids, self._ids = self._ids[:count], self._ids[count:]
        times: list[float] = []
        for aggregate_id in ids:
            began = time.perf_counter()
            counter: Counter = self.app.repository.get(aggregate_id)
            counter.bump()
            self.app.save(counter)
            times.append(time.perf_counter() - began)
        return times

    def close(self) -> None:
        self.app.close()
