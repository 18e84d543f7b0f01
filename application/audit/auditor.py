"""``Audit``: replay the log into scratch read models and compare them with the live ones.

    report = Audit(service).run()                     # the whole log
    report = Audit(service).run(until=Until(position=5000), checkpoint=Path("log.ckpt"))

Nothing is written to the live read models and nothing is published: the live rows are only
read (one snapshot), the replay writes into a private in-memory SQLite database (or the
``scratch`` database given).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper
from eventsourcing.postgres import PostgresApplicationRecorder

from seatledger.application.audit.compare import (
    SPECS,
    ReadModelSpec,
    Snapshot,
    compare,
    not_compared,
    read_snapshot,
    sync_violations,
)
from seatledger.application.audit.invariants import HistoryChecker
from seatledger.application.audit.parallel import (
    PARALLEL_MIN_EVENTS,
    ParallelReplay,
    can_replay_in_parallel,
    default_workers,
)
from seatledger.application.audit.replay import (
    DEFAULT_PAGE_SIZE,
    Findings,
    Progress,
    Replay,
    Until,
    cyclic_gc_paused,
    scratch_read_models,
)
from seatledger.application.audit.report import (
    AuditReport,
    InvariantReport,
    LogReport,
    ReadModelReport,
    Violation,
)
from seatledger.domain.values import utc_instant
from seatledger.projections.db import ReadModelDB, Row
from seatledger.projections.source import EventSource


class Store(Protocol):
    """What an audit reads: the event store and the live read models (a service has them)."""

    @property
    def recorder(self) -> ApplicationRecorder: ...

    @property
    def mapper(self) -> Mapper[UUID]: ...

    @property
    def read_models(self) -> ReadModelDB: ...


class Audit:
    """Replays the log once and answers: do the live read models match history, did every
    invariant hold at every event, and (with a checkpoint) is the log what it was?"""

    def __init__(
        self,
        store: Store,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_differences: int = 10,
        max_violations: int = 50,
        scratch: ReadModelDB | None = None,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError("workers must be positive")
        self.store = store
        self.page_size = page_size
        self.max_differences = max_differences
        self.max_violations = max_violations
        self.scratch = scratch
        self.progress = progress
        self.workers = workers

    def run(self, until: Until | None = None, *, checkpoint: Path | None = None) -> AuditReport:
        """The whole audit with the cycle collector paused, not only its replay: reading the
        live snapshot and comparing allocate as much as the replay, over a heap as large,
        and a full collection there cost as much as the comparison itself (measured)."""
        with cyclic_gc_paused():
            return self._run(until, checkpoint)

    def _run(self, until: Until | None, checkpoint: Path | None) -> AuditReport:
        started = time.perf_counter()
        until = until or Until()
        workers = self.processes()
        if workers > 1:
            live, history = self._replay_in_parallel(until, workers)
        else:
            live = read_snapshot(self.store.read_models)
            history = self._replay(live, until)
        reports = history.reports
        for spec in SPECS:
            if spec.name not in reports:
                position = live.positions.get(spec.name, 0)
                reports[spec.name] = not_compared(spec, live.rows[spec.name], position=position)
        invariants = self._invariants(history, live)
        chain = history.found.chain
        checkpoint_report = None
        if checkpoint is not None and checkpoint.exists():
            bounded = until.position is not None or until.instant is not None
            checkpoint_report = chain.verify_checkpoint(
                checkpoint, replayed_to=history.found.covered if bounded else None
            )
        elif checkpoint is not None:
            checkpoint_report = chain.write_checkpoint(checkpoint)
        read_models = [reports[spec.name] for spec in SPECS]
        ok = (
            all(r.ok for r in read_models)
            and invariants.violations == 0
            and (checkpoint_report is None or checkpoint_report.ok)
        )
        return AuditReport(
            ok=ok,
            events=chain.events,
            last_position=history.found.covered,
            until_position=until.position,
            until_instant=None if until.instant is None else utc_instant(until.instant),
            read_models=read_models,
            invariants=invariants,
            log=LogReport(
                events=chain.events,
                last_position=chain.last_position,
                head=chain.head,
                checkpoint=checkpoint_report,
            ),
            seconds=round(time.perf_counter() - started, 3),
        )

    def processes(self) -> int:
        """Processes to replay in: 1 unless the log is on PostgreSQL, the scratch read
        models are the audit's own (in memory) and, by default, the log is long."""
        if self.scratch is not None or not can_replay_in_parallel(self.store.recorder):
            return 1
        if self.workers is not None:
            return self.workers
        if EventSource(self.store.recorder, self.store.mapper).max_id() < PARALLEL_MIN_EVENTS:
            return 1
        return default_workers()

    def _replay(self, live: Snapshot, until: Until) -> _History:
        """One process: replay into scratch read models, comparing at every live position."""
        own_scratch = self.scratch is None
        scratch = self.scratch or scratch_read_models()
        reports: dict[str, ReadModelReport] = {}
        rebuilt_outbox: list[Row] = []
        try:
            checker = HistoryChecker(limit=self.max_violations)
            replay = Replay(
                self.store.recorder,
                self.store.mapper,
                scratch,
                checker=checker,
                page_size=self.page_size,
                progress=self.progress,
            )

            def at_live_position(spec: ReadModelSpec) -> None:
                with scratch.read() as tx:
                    rebuilt = spec.select(tx)
                if spec.name == "outbox":
                    rebuilt_outbox.extend(rebuilt)
                reports[spec.name] = self._compare(spec, live, rebuilt)

            replay.run(until, _stops(live, at_live_position))
        finally:
            if own_scratch:
                scratch.close()
        findings = Findings(
            chain=replay.chain,
            covered=replay.covered,
            undecodable=replay.undecodable,
            first=list(checker.first),
            count=checker.count,
            events_checked=checker.events_checked,
        )
        return _History(findings, reports, rebuilt_outbox)

    def _replay_in_parallel(self, until: Until, workers: int) -> tuple[Snapshot, _History]:
        """Several processes (:mod:`.parallel`), the same answer as :meth:`_replay`; the
        workers start once the live positions are read, and the live rows are read while
        they work."""
        recorder = self.store.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        started: list[ParallelReplay] = []

        def start(positions: dict[str, int]) -> None:
            started.append(
                ParallelReplay.start(
                    recorder,
                    self.store.mapper,
                    workers=workers,
                    until=until,
                    page_size=self.page_size,
                    limit=self.max_violations,
                    progress=self.progress,
                )
            )

        try:
            live = read_snapshot(self.store.read_models, between=start)
        except BaseException:
            for replay in started:
                replay.stop()
            raise
        replayed = started[0].result()
        reports: dict[str, ReadModelReport] = {}
        rebuilt_outbox: list[Row] = []
        for spec in SPECS:
            position = live.positions.get(spec.name, 0)
            if position <= replayed.covered:
                rebuilt = replayed.rows_at(spec, position)
                if spec.name == "outbox":
                    rebuilt_outbox = rebuilt
                reports[spec.name] = self._compare(spec, live, rebuilt)
        return live, _History(replayed, reports, rebuilt_outbox)

    def _compare(self, spec: ReadModelSpec, live: Snapshot, rebuilt: list[Row]) -> ReadModelReport:
        return compare(
            spec,
            live.rows[spec.name],
            rebuilt,
            position=live.positions.get(spec.name, 0),
            limit=self.max_differences,
        )

    def _invariants(self, history: _History, live: Snapshot) -> InvariantReport:
        """The checker's violations, undecodable events, and one sync per change (when the
        outbox was compared), in log order."""
        found = list(history.found.first)
        count = history.found.count
        for position, error in history.found.undecodable:
            found.append(
                Violation(
                    position=position,
                    kind="undecodable",
                    instant="",
                    restaurant_id=None,
                    service_date=None,
                    booking_ids=[],
                    table_ids=[],
                    message=error,
                )
            )
            count += 1
        if history.reports["outbox"].compared:
            syncs = sync_violations(live.rows["outbox"], history.rebuilt_outbox)
            found.extend(syncs)
            count += len(syncs)
        found.sort(key=lambda v: v.position)
        return InvariantReport(
            events_checked=history.found.events_checked,
            violations=count,
            first=found[: self.max_violations],
        )


@dataclass
class _History:
    """A replay's findings and the comparison of every read model it reached."""

    found: Findings
    reports: dict[str, ReadModelReport]
    rebuilt_outbox: list[Row]


def _stops(
    live: Snapshot, compare_at: Callable[[ReadModelSpec], None]
) -> dict[int, Callable[[], None]]:
    """One callback per live tracking position: compare every read model that stands there."""
    by_position: dict[int, list[ReadModelSpec]] = {}
    for spec in SPECS:
        by_position.setdefault(live.positions.get(spec.name, 0), []).append(spec)

    def at(specs: list[ReadModelSpec]) -> Callable[[], None]:
        def run() -> None:
            for spec in specs:
                compare_at(spec)

        return run

    return {position: at(specs) for position, specs in by_position.items()}
