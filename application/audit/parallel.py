"""The audit's replay split over forked worker processes, by aggregate (PostgreSQL).

One process replays the log at about a sixth of the rate PostgreSQL serves it: decoding,
checking and projecting every event is CPU-bound Python. The events of one aggregate need
nothing of any other aggregate's but the floor layouts the invariants read, so each of
``workers`` processes reads its share of the aggregates (PostgreSQL filters by the last byte of
the aggregate id) plus every floor-layout event, and does for them what
:class:`~seatledger.application.audit.replay.Replay` does for all: decode, digest, check the
invariants, build the read-model rows (with the projections' own ``message_values`` and
``member_values``). The parent merges by log position: the chained digest
over every event in log order, violations and undecodable events in order, the outbox rows,
and the members (the latest change of a booking replaces its rows, as in the members
projection). So the answer is the sequential replay's, which the tests compare it with.
The layout events every worker reads are chained, counted and reported by worker 0 only.

Forked, not spawned: a spawned worker would import the application anew (over a second on a
small machine); a forked one shares the parent's loaded modules and mapper. A child never
uses nor closes the connections it inherited (they are the parent's sockets): it opens its
own (:func:`~seatledger.application.postgres_store.forked_datastore`) and leaves with
``os._exit``, as multiprocessing's fork children do.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper, PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL

from seatledger.application.audit.compare import MEMBERS, OUTBOX, ReadModelSpec
from seatledger.application.audit.digest import LogChain
from seatledger.application.audit.invariants import CHECKED_TOPICS, HistoryChecker
from seatledger.application.audit.replay import (
    Findings,
    Progress,
    Until,
    cyclic_gc_paused,
    postgres_page_reader,
    prefetched_pages,
)
from seatledger.application.audit.report import Violation
from seatledger.application.postgres_store import forked_datastore
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.layout import FloorLayout
from seatledger.projections.db import Row
from seatledger.projections.members import member_values
from seatledger.projections.outbox import OutboxProjection, message_values
from seatledger.projections.projection import CHANGE_TOPICS, table_change
from seatledger.projections.source import EventSource

#: Every worker reads these (the invariants of any day read its restaurant's floor).
SHARED_TOPICS: tuple[str, ...] = tuple(event.TOPIC for event in FloorLayout.EVENTS)
#: A log shorter than this is replayed in one process (forking costs more than it saves).
PARALLEL_MIN_EVENTS = 20_000
#: A worker sends what it found every so many pages: the parent unpickles the parts while
#: the workers go on, instead of all of it at the end.
PART_PAGES = 10

_OUTBOX_TOPICS = frozenset(OutboxProjection.topics)
_MEMBER_TOPICS = frozenset(CHANGE_TOPICS)
_OUTBOX_POSITION = OUTBOX.columns.index("notification_id")
_OUTBOX_SEQ = OUTBOX.columns.index("seq")


def default_workers() -> int:
    """Processes for a parallel replay: one per CPU (at most 4), where fork is the safe
    default (Linux); 1 elsewhere."""
    if not sys.platform.startswith("linux"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def can_replay_in_parallel(recorder: object) -> bool:
    """On PostgreSQL with uuid aggregate ids (shares are cut by their last byte), on Linux."""
    return (
        isinstance(recorder, PostgresApplicationRecorder)
        and recorder.datastore.originator_id_type == "uuid"
        and sys.platform.startswith("linux")
    )


class ShardError(RuntimeError):
    """A worker process of a parallel replay failed (its traceback is the message); a
    worker's store failure is raised as the library's ``PersistenceError`` instead."""


@dataclass
class _Job:
    """What every worker is given (inherited through fork, never pickled)."""

    recorder: PostgresApplicationRecorder
    mapper: Mapper[UUID]
    workers: int
    last: int
    instant: datetime | None
    page_size: int
    limit: int


@dataclass
class ShardResult:
    """What one worker found in (a part of) its share of the log, in log order."""

    chain: LogChain = field(default_factory=LogChain)
    undecodable: list[tuple[int, str]] = field(default_factory=list)
    #: the first ``limit`` violations, and the position of every one (for counting)
    violations: list[Violation] = field(default_factory=list)
    violation_positions: list[int] = field(default_factory=list)
    checked_positions: list[int] = field(default_factory=list)
    outbox: list[Row] = field(default_factory=list)
    #: (position, (restaurant id, booking id), the booking's member rows after the change)
    members: list[tuple[int, tuple[str, str], list[Row]]] = field(default_factory=list)
    #: the first event stored after ``Until.instant`` (None: none before ``last``)
    stopped_at: int | None = None


@dataclass
class Replayed(Findings):
    """The merged answer of a parallel replay: its findings and every read-model row."""

    outbox: list[Row]
    members: list[tuple[int, tuple[str, str], list[Row]]]

    def rows_at(self, spec: ReadModelSpec, position: int) -> list[Row]:
        """A read model's rows as the replay had them at ``position``, in ``spec`` order."""
        if spec is OUTBOX:
            return [row for row in self.outbox if row[_OUTBOX_POSITION] <= position]
        assert spec is MEMBERS, spec
        latest: dict[tuple[str, str], list[Row]] = {}
        for at, key, rows in self.members:
            if at > position:
                break
            latest[key] = rows
        return sorted(row for rows in latest.values() for row in rows)


class ParallelReplay:
    """A replay running in ``workers`` forked processes (:meth:`start`) and its merged
    answer (:meth:`result`, once; the workers are gone afterwards, whatever happened)."""

    def __init__(self, job: _Job, progress: Progress | None) -> None:
        self.job = job
        self.progress = progress
        context = multiprocessing.get_context("fork")
        self.reached = context.Array("q", job.workers, lock=False)
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for shard in range(job.workers):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_run_shard,
                args=(job, shard, self.reached, send),
                name=f"seatledger-audit-{shard}",
                daemon=True,
            )
            process.start()
            send.close()
            self.pipes.append(receive)
            self.processes.append(process)

    @classmethod
    def start(
        cls,
        recorder: PostgresApplicationRecorder,
        mapper: Mapper[UUID],
        *,
        workers: int,
        until: Until,
        page_size: int,
        limit: int,
        progress: Progress | None = None,
    ) -> ParallelReplay:
        """Fork the workers over the log as it is now, up to ``until``."""
        last = EventSource(recorder, mapper).max_id()
        if until.position is not None:
            last = min(last, until.position)
        job = _Job(recorder, mapper, workers, last, until.instant, page_size, limit)
        return cls(job, progress)

    def result(self) -> Replayed:
        try:
            results = _collect(self.pipes, self.reached, self.job.last, self.progress)
        finally:
            self.stop()
        return _merge(results, self.job.last, self.job.limit)

    def stop(self) -> None:
        """Wait briefly for every worker to leave, end those that do not."""
        for pipe in self.pipes:
            pipe.close()
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


def _collect(
    pipes: list[Connection], reached: Any, last: int, progress: Progress | None
) -> list[ShardResult]:
    """Every part of every worker's result (:data:`PART_PAGES`), taken as they come (so
    the parent unpickles while the workers work), reporting progress meanwhile."""
    parts: list[ShardResult] = []
    waiting = dict(enumerate(pipes))
    while waiting:
        ready = wait(list(waiting.values()), timeout=0.25)
        for shard, pipe in [(s, p) for s, p in waiting.items() if p in ready]:
            try:
                outcome: tuple[str, Any, str] = pipe.recv()
            except EOFError:
                raise ShardError(f"audit worker {shard} died without an answer") from None
            if outcome[0] == "store":
                raise PersistenceError(f"audit worker {shard}: {outcome[1]}")
            if outcome[0] not in ("part", "done"):
                raise ShardError(f"audit worker {shard} failed: {outcome[1]}\n{outcome[2]}")
            parts.append(cast(ShardResult, outcome[1]))
            if outcome[0] == "done":
                del waiting[shard]
        if progress is not None:
            progress(min(reached[s] for s in waiting) if waiting else last, last)
    return parts


def _run_shard(job: _Job, shard: int, reached: Any, send: Connection) -> None:
    """A worker's body: replay its share, sending its result in parts as it goes (the last
    one ``done``), or the failure; then close."""
    try:
        with cyclic_gc_paused():
            result = _replay_shard(job, shard, reached, lambda part: send.send(("part", part, "")))
        send.send(("done", result, ""))
    except BaseException as exc:  # the parent raises it again (_collect)
        kind = "store" if isinstance(exc, psycopg.Error | PersistenceError | OSError) else "error"
        send.send((kind, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        send.close()


def _replay_shard(
    job: _Job, shard: int, reached: Any, send_part: Callable[[ShardResult], None]
) -> ShardResult:
    recorder = copy.copy(job.recorder)
    recorder.datastore = forked_datastore(job.recorder.datastore, "seatledger-audit")
    try:
        return _replay(job, shard, reached, recorder, send_part)
    finally:
        recorder.datastore.pool.close()


def _replay(
    job: _Job,
    shard: int,
    reached: Any,
    recorder: PostgresApplicationRecorder,
    send_part: Callable[[ShardResult], None],
) -> ShardResult:
    """:meth:`~.replay.Replay.run`'s loop over one share of the aggregates; every
    :data:`PART_PAGES` pages, what was found so far goes to ``send_part``."""
    where = (
        SQL("get_byte(uuid_send(originator_id), 15) %% %s = %s OR topic = ANY(%s)"),
        (job.workers, shard, list(SHARED_TOPICS)),
    )
    read = postgres_page_reader(recorder, job.page_size, job.last, where)
    source = EventSource(recorder, job.mapper)
    checker = HistoryChecker(limit=job.limit)
    result = ShardResult()
    shared = frozenset(SHARED_TOPICS)
    decode, add, day_of = source.decoder.decode, result.chain.add, source.day_of
    instant, lead = job.instant, shard == 0
    pages = prefetched_pages(read, 0, job.last, job.page_size)
    for count, page in enumerate(pages, 1):
        for notification in page:
            position, topic = notification.id, notification.topic
            mine = lead or topic not in shared
            try:
                event: DomainEvent | None = decode(notification)
            except Exception as exc:  # an edited event may not decode: report it, go on
                if mine:
                    result.undecodable.append((position, f"{type(exc).__name__}: {exc}"))
                event = None
            if instant is not None and event is not None and event.timestamp > instant:
                result.stopped_at = position
                return _finished(result, checker)
            if mine:
                add(notification)
            if event is None:
                continue
            if topic in CHECKED_TOPICS:
                before = checker.count
                checker.check(position, event, report=mine)
                if mine:
                    result.checked_positions.append(position)
                    result.violation_positions.extend([position] * (checker.count - before))
            if topic in _OUTBOX_TOPICS or topic in _MEMBER_TOPICS:
                try:
                    day = day_of(event)
                except LookupError as exc:
                    result.undecodable.append((position, str(exc)))
                    continue
                if topic in _OUTBOX_TOPICS:
                    result.outbox.extend(message_values(event, position, day))
                change = table_change(event) if topic in _MEMBER_TOPICS else None
                if change is not None:
                    rows = member_values(change, day, position)
                    result.members.append((position, (day.restaurant_id, change.booking_id), rows))
        reached[shard] = page[-1].id
        if count % PART_PAGES == 0:
            send_part(result)
            result = ShardResult()
            add = result.chain.add
    reached[shard] = job.last
    return _finished(result, checker)


def _finished(result: ShardResult, checker: HistoryChecker) -> ShardResult:
    result.violations = list(checker.first)
    return result


def _merge(results: Sequence[ShardResult], last: int, limit: int) -> Replayed:
    """One answer from every worker's, in log order, cut where the first worker stopped."""
    stops = [r.stopped_at for r in results if r.stopped_at is not None]
    cut = min(stops) if stops else last + 1  # positions below the cut are replayed
    chain = LogChain.merged([r.chain for r in results], below=cut)
    violations = sorted(
        (v for r in results for v in r.violations if v.position < cut),
        key=lambda v: v.position,
    )
    outbox = sorted(
        (row for r in results for row in r.outbox if row[_OUTBOX_POSITION] < cut),
        key=lambda row: (row[_OUTBOX_POSITION], row[_OUTBOX_SEQ]),
    )
    members = sorted(
        (change for r in results for change in r.members if change[0] < cut),
        key=lambda change: change[0],
    )
    return Replayed(
        chain=chain,
        covered=chain.last_position if stops else last,
        undecodable=sorted(u for r in results for u in r.undecodable if u[0] < cut),
        first=violations[:limit],
        count=sum(1 for r in results for p in r.violation_positions if p < cut),
        events_checked=sum(1 for r in results for p in r.checked_positions if p < cut),
        outbox=outbox,
        members=members,
    )
