"""Projection catch-up on PostgreSQL: our ``PageRunner`` against the library's ``ProjectionRunner``.

One generated log (``seatledger.application.testing.workload.generate_log``) is copied into the
event table of a store in scratch schema A. Both sides then catch the ``members`` and ``outbox``
projections up from position 0, one projection after the other, over the same notifications:

* **ours** — ``PageRunner`` (``service.projection_runners``' factory), one transaction per page
  of ``--page-size`` notifications, the two projections in turns a page each
  (``catch_up_together``, as the worker runs them: each event decoded once for both), read
  models in schema A;
* **library** — ``eventsourcing.projection.ProjectionRunner`` with a ``Projection`` whose
  ``process_event`` writes the same rows through a ``PostgresTrackingRecorder`` subclass, one
  transaction per event (rows + ``_insert_tracking``), into the same tables in schema B.

* **raw** — the baseline of issue 12's target (catch-up ≥ 0.3 times it): every notification of
  the log read with the recorder's bulk ``select_notifications`` in pages of the same size,
  each state touched, nothing decoded or written. Reported as ``ratio_to_raw``: our catch-up's
  log events per second over the raw read's, measured in the same repeat.

The per-event work is identical by construction: the library side calls our projections'
``apply`` with a page of one event, inside the library's transaction (so ``member_rows`` and
``messages_for`` produce the rows on both sides), and decodes with the same mapper. What
differs is what paging allows: the page runner writes a page's rows with one ``COPY`` per
table and one set-based ``DELETE``, keeps only each booking's last change of the page, and
commits once per page; the library side (``Tx``'s generic ``insert_rows``/``delete_keys``)
sends one ``INSERT``/``DELETE`` per row and commits once per event. Both sides
read the same topics (``CHANGE_TOPICS``, plus ``PolicyDriftDetected`` for the outbox), look
service days up through a cold ``EventSource`` per run, and start from empty tables. After
every run the member and outbox rows of both schemas must be identical, or the run fails.
"""

from __future__ import annotations

import argparse
import functools
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent, Tracking
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.projection import Projection as LibraryProjection
from eventsourcing.projection import ProjectionRunner
from eventsourcing.utils import Environment, EnvType
from psycopg import sql
from psycopg.rows import DictRow

from bench.common import (
    Machine,
    Stopwatch,
    load_average,
    machine,
    median,
    postgres_settings,
    print_json_line,
    print_table,
    progress,
    rate,
    scratch_schema_names,
    scratch_schemas,
)
from seatledger.application.mapper import PydanticMapper
from seatledger.application.read_models import projection_runners
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log, generate_log
from seatledger.domain.aggregate import DomainEvent
from seatledger.projections.db import (
    Dialect,
    Params,
    PostgresReadModels,
    ReadModelDB,
    Row,
    Tx,
    normalise,
    to_psycopg,
)
from seatledger.projections.members import MembersProjection, all_members
from seatledger.projections.migrations import migrate
from seatledger.projections.outbox import OutboxProjection, all_outbox
from seatledger.projections.projection import Projected, Projection
from seatledger.projections.runner import PageRunner, catch_up_together
from seatledger.projections.source import EventSource

NAME = "projection-catchup"
#: The projections both sides run, in this order.
TARGETS: tuple[Projection, ...] = (MembersProjection(), OutboxProjection())
#: How often the library side's tracking position is polled to stop the clock.
POLL_SECONDS = 0.01


# --- the library side -----------------------------------------------------------------------


class _CursorTx(Tx):
    """Our ``Tx`` over the library's transaction cursor, so our projections' ``apply`` writes
    inside the library's per-event transaction."""

    dialect: Dialect = "postgres"

    def __init__(self, cursor: psycopg.Cursor[DictRow]) -> None:
        self.cursor = cursor

    def execute(self, statement: str, params: Params | None = None) -> list[Row]:
        self.cursor.execute(_psycopg_sql(statement), dict(params or {}))
        if self.cursor.description is None:
            return []
        return [tuple(normalise(v) for v in row.values()) for row in self.cursor.fetchall()]

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        if rows:
            self.cursor.executemany(_psycopg_sql(statement), [dict(r) for r in rows])


@functools.cache
def _psycopg_sql(statement: str) -> str:
    # cached so the adapter adds no per-event rewriting cost the page runner does not pay
    return to_psycopg(statement)


class BaselineView(PostgresTrackingRecorder):
    """The materialised view of the library side: our read-model tables in the view's schema,
    written with the tracking record in one transaction per event."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        # Our SQL names tables unqualified: point the pool's connections at the schema (the
        # factory opened the pool already: replace the connections it made).
        pool = self.datastore.pool
        if not isinstance(pool.kwargs, dict):
            raise RuntimeError("the view's pool must take its connection arguments as a dict")
        pool.kwargs["options"] = f"-c search_path={self.datastore.schema}"
        pool.drain()

    def record(self, projection: Projection, item: Projected, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            projection.apply(_CursorTx(curs), (item,))
            self._insert_tracking(curs, tracking)


class _BaselineProjection(LibraryProjection[BaselineView]):
    target: ClassVar[Projection]
    #: Service-day lookups; a fresh (cold) source is set before every run.
    days: ClassVar[EventSource | None] = None

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if not isinstance(domain_event, DomainEvent):
            raise TypeError(f"not a seatledger event: {domain_event!r}")
        days = _BaselineProjection.days
        if days is None:
            raise RuntimeError("no EventSource set for the baseline projection")
        item = Projected(tracking.notification_id, domain_event, days.day_of(domain_event))
        self.view.record(self.target, item, tracking)


class BaselineMembers(_BaselineProjection):
    name = "bench_members"
    target = TARGETS[0]
    topics = TARGETS[0].topics


class BaselineOutbox(_BaselineProjection):
    name = "bench_outbox"
    target = TARGETS[1]
    topics = TARGETS[1].topics


BASELINES: dict[str, type[_BaselineProjection]] = {
    cls.target.name: cls for cls in (BaselineMembers, BaselineOutbox)
}


class LogReader(Application[UUID]):
    """The application the library runner subscribes to: the service's event store (same
    name, hence the same table), read with the service's mapper."""

    name = AssignmentService.name

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return PydanticMapper(compressor=self.factory.compressor(), cipher=self.factory.cipher())


def library_env(store: Settings, views: Settings) -> dict[str, str]:
    """One environment for the runner: unprefixed keys configure the views (schema B), keys
    prefixed with the application's name configure the :class:`LogReader` (schema A)."""
    prefix = LogReader.name.upper() + "_"
    env = dict(views.eventsourcing_env())
    # the library's own tracking table in schema B is the baseline's: let the library make it
    # (the service's settings turn the library's CREATE_TABLE off, seatledger migrate owns ours)
    env["CREATE_TABLE"] = "y"
    env.update({prefix + key: value for key, value in store.eventsourcing_env().items()})
    return env


# --- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    side: str
    seconds: float
    per_projection: dict[str, float]
    applied: int
    #: Early returns of ``catch_up()`` because another process held the advisory lock.
    lock_busy: int = 0


@dataclass(frozen=True)
class Subset:
    """The notifications one projection reads: how many, and the last id."""

    count: int
    last_id: int


@dataclass
class Result:
    events: int
    page_size: int
    repeat: int
    seed: int
    restaurants: int
    subsets: dict[str, Subset]
    machine: Machine
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    members_rows: int = 0
    outbox_rows: int = 0
    ours: list[Run] = field(default_factory=list)
    library: list[Run] = field(default_factory=list)
    #: seconds of each raw paged read of the whole log (the issue-12 baseline)
    raw: list[float] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(subset.count for subset in self.subsets.values())

    def median_seconds(self, side: str) -> float:
        return median([run.seconds for run in (self.ours if side == "ours" else self.library)])

    @property
    def ratio(self) -> float:
        return self.median_seconds("library") / self.median_seconds("ours")

    @property
    def raw_ratio(self) -> float:
        """Our catch-up rate over the raw paged read's, both in log events per second."""
        return median(self.raw) / self.median_seconds("ours")

    @property
    def pair_ratios(self) -> list[float]:
        """Library time / our time of each repeat (the two runs of a repeat are adjacent in
        time, so they saw much the same load from the rest of the machine)."""
        return [
            lib.seconds / ours.seconds for ours, lib in zip(self.ours, self.library, strict=True)
        ]

    def as_dict(self) -> dict[str, Any]:
        def side(runs: list[Run]) -> dict[str, Any]:
            seconds = median([run.seconds for run in runs])
            return {
                "median_seconds": round(seconds, 3),
                "log_events_per_s": round(rate(self.events, seconds), 1),
                "applied_per_s": round(rate(self.applied, seconds), 1),
                "runs_seconds": [round(run.seconds, 3) for run in runs],
                "lock_busy_retries": sum(run.lock_busy for run in runs),
                "median_seconds_per_projection": {
                    name: round(median([run.per_projection[name] for run in runs]), 3)
                    for name in self.subsets
                },
            }

        return {
            "benchmark": NAME,
            "events": self.events,
            "page_size": self.page_size,
            "repeat": self.repeat,
            "seed": self.seed,
            "restaurants": self.restaurants,
            "notifications": {name: s.count for name, s in self.subsets.items()},
            "rows": {"members": self.members_rows, "outbox": self.outbox_rows},
            "identical_rows": True,
            "ours": side(self.ours),
            "library": side(self.library),
            "ratio": round(self.ratio, 2),
            "raw": {
                "median_seconds": round(median(self.raw), 3),
                "log_events_per_s": round(rate(self.events, median(self.raw)), 1),
                "runs_seconds": [round(t, 3) for t in self.raw],
            },
            "ratio_to_raw": round(self.raw_ratio, 3),
            "ratio_to_raw_target": 0.3,
            "pair_ratios": [round(r, 2) for r in self.pair_ratios],
            "machine": self.machine.as_dict(),
            "load_average": {"before": self.load_before, "after": self.load_after},
        }


def _truncate_read_models(db: ReadModelDB) -> None:
    with db.transaction() as tx:
        tx.execute("TRUNCATE seatledger_members, seatledger_outbox, seatledger_tracking")


def _drop_library_tracking(conninfo: str, schema: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for cls in BASELINES.values():
            table = f"{cls.name.lower()}_tracking"
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )


def run_raw(service: AssignmentService, page_size: int) -> tuple[int, float]:
    """The baseline of issue 12: every notification of the log read with the recorder's
    bulk ``select_notifications`` in pages of the runner's page size, each state touched
    (its length summed), nothing decoded, nothing written. Returns (count, seconds)."""
    count = size = after = 0
    with Stopwatch() as watch:
        while page := service.recorder.select_notifications(
            start=after, limit=page_size, inclusive_of_start=False
        ):
            count += len(page)
            size += sum(len(n.state) for n in page)
            after = page[-1].id
    return count, watch.seconds


def run_ours(service: AssignmentService, subsets: dict[str, Subset]) -> Run:
    """Catch both projections up with fresh page runners (a cold day cache and a cold memo of
    decoded events), in turns a page each, as the worker and ``catch_up_projections`` do
    (``catch_up_together``), timed; a projection's time is the sum of its pages' times.

    ``catch_up()`` also returns when another process holds the projection's advisory lock
    (the key is per projection name, not per schema, so a seatledger store in another schema
    of the same database contends); such early returns are retried and counted."""
    source = EventSource(service.recorder, service.mapper)
    runners = projection_runners(service.read_models, source, service.telemetry, service.settings)
    per_projection = {runner.name: 0.0 for runner in runners}
    for runner in runners:

        def timed(runner: PageRunner = runner, step: Callable[[], int] = runner.step) -> int:
            with Stopwatch() as watch:
                applied = step()
            per_projection[runner.name] += watch.seconds
            return applied

        runner.step = timed  # type: ignore[method-assign, assignment]
    applied = lock_busy = 0
    with Stopwatch() as watch:
        applied += catch_up_together(runners)
        for runner in runners:
            while runner.position() < subsets[runner.name].last_id:
                lock_busy += 1
                time.sleep(0.001)
                applied += runner.catch_up()
    return Run("ours", watch.seconds, per_projection, applied, lock_busy)


def run_library(service: AssignmentService, env: dict[str, str], subsets: dict[str, Subset]) -> Run:
    """Catch both projections up with the library's runner, one after the other. The clock
    starts when the runner's constructor returns (views, application and subscription are
    set up, the processing thread has just started) and stops when the view's tracking
    position reaches the projection's last notification."""
    _BaselineProjection.days = EventSource(service.recorder, service.mapper)
    per_projection: dict[str, float] = {}
    for target in TARGETS:
        baseline = BASELINES[target.name]
        last_id = subsets[target.name].last_id
        runner = ProjectionRunner(
            application_class=LogReader,
            projection_class=baseline,
            view_class=BaselineView,
            env=env,
        )
        started = time.perf_counter()
        try:
            with runner:
                while (runner.view.max_tracking_id(LogReader.name) or 0) < last_id:
                    runner.run_forever(timeout=POLL_SECONDS)  # re-raises a runner error
                    if runner.is_interrupted.is_set():
                        raise RuntimeError(f"{baseline.name}: the library runner stopped")
                per_projection[target.name] = time.perf_counter() - started
        finally:
            runner.view.datastore.close()
    _BaselineProjection.days = None
    applied = sum(subsets[t.name].count for t in TARGETS)
    return Run("library", sum(per_projection.values()), per_projection, applied)


def _subsets(conninfo: str, schema: str, table: str) -> dict[str, Subset]:
    subsets: dict[str, Subset] = {}
    with psycopg.connect(conninfo) as conn:
        for target in TARGETS:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(max(notification_id), 0) FROM {}.{}"
                    " WHERE topic = ANY(%s)"
                ).format(sql.Identifier(schema), sql.Identifier(table)),
                (list(target.topics),),
            ).fetchone()
            assert row is not None
            subsets[target.name] = Subset(int(row[0]), int(row[1]))
    return subsets


def _verify(ours: ReadModelDB, library: ReadModelDB) -> tuple[int, int]:
    """Both sides' rows must be identical (and not trivially empty)."""
    members, outbox = all_members(ours), all_outbox(ours)
    if members != all_members(library):
        raise AssertionError("member rows differ between the page runner and the library runner")
    if outbox != all_outbox(library):
        raise AssertionError("outbox rows differ between the page runner and the library runner")
    if not members or not outbox:
        raise AssertionError("the log produced no member or outbox rows: nothing was measured")
    return len(members), len(outbox)


def _load_log(events: int, seed: int, restaurants: int) -> list[StoredEvent]:
    with Stopwatch() as watch:
        stored = generate_log(events, seed=seed, restaurants=restaurants)
    progress(f"generated {len(stored):,} events in {watch.seconds:.1f} s")
    if len(stored) < events:
        raise RuntimeError(f"the generator produced {len(stored)} events, wanted {events}")
    return stored


def measure(
    *, events: int, repeat: int, page_size: int, seed: int = 1, restaurants: int = 1
) -> Result:
    stored = _load_log(events, seed, restaurants)
    schema_a, schema_b = scratch_schema_names("catchup", "a", "b")
    store_settings = postgres_settings(
        schema_a, projection_mode="off", migrate_on_start=True, projection_page_size=page_size
    )
    view_settings = postgres_settings(schema_b, projection_mode="off")
    conninfo = store_settings.postgres_conninfo()
    with (
        scratch_schemas(conninfo, [schema_a, schema_b]),
        AssignmentService(store_settings) as service,
    ):
        recorder = service.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        with Stopwatch() as watch:
            copied = copy_log(stored, recorder)
        progress(f"copied {copied:,} events into {schema_a} in {watch.seconds:.1f} s")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("VACUUM ANALYZE {}.{}").format(
                    sql.Identifier(schema_a), sql.Identifier(recorder.events_table_name)
                )
            )
        subsets = _subsets(conninfo, schema_a, recorder.events_table_name)
        result = Result(
            events=copied,
            page_size=page_size,
            repeat=repeat,
            seed=seed,
            restaurants=restaurants,
            subsets=subsets,
            machine=machine(conninfo),
            load_before=load_average(),
        )
        # the generated log stays referenced here: keep the cycle collector from scanning it
        # again and again in every side's timings (a worker holds no such log)
        gc.collect()
        gc.freeze()
        env = library_env(store_settings, view_settings)
        with PostgresReadModels(conninfo, schema_b, max_size=2) as views:
            migrate(views)
            for index in range(1, repeat + 1):
                # alternate the sides so drift (autovacuum, caches) hits both alike
                count, raw_seconds = run_raw(service, page_size)
                if count != copied:
                    raise AssertionError(f"the raw read saw {count} of {copied} events")
                result.raw.append(raw_seconds)
                progress(f"run {index}/{repeat} raw:     {raw_seconds:8.2f} s")
                _truncate_read_models(service.read_models)
                ours = run_ours(service, subsets)
                progress(f"run {index}/{repeat} ours:    {ours.seconds:8.2f} s")
                _truncate_read_models(views)
                _drop_library_tracking(conninfo, schema_b)
                library = run_library(service, env, subsets)
                progress(f"run {index}/{repeat} library: {library.seconds:8.2f} s")
                if ours.applied != library.applied:
                    raise AssertionError(
                        f"applied {ours.applied} (ours) vs {library.applied} (library)"
                    )
                result.members_rows, result.outbox_rows = _verify(service.read_models, views)
                result.ours.append(ours)
                result.library.append(library)
        result.load_after = load_average()
    return result


def report(result: Result) -> None:
    rows: list[list[object]] = [
        [
            "raw paged read (baseline)",
            f"{median(result.raw):.2f}",
            f"{rate(result.events, median(result.raw)):,.0f}",
            "",
            "",
            ", ".join(f"{t:.2f}" for t in result.raw),
        ]
    ]
    for label, side in (("ours: PageRunner", "ours"), ("library: ProjectionRunner", "library")):
        runs = result.ours if side == "ours" else result.library
        seconds = result.median_seconds(side)
        rows.append(
            [
                label,
                f"{seconds:.2f}",
                f"{rate(result.events, seconds):,.0f}",
                f"{rate(result.applied, seconds):,.0f}",
                " / ".join(
                    f"{median([run.per_projection[t.name] for run in runs]):.2f}" for t in TARGETS
                ),
                ", ".join(f"{run.seconds:.2f}" for run in runs),
            ]
        )
    notifications = " + ".join(f"{s.count:,} {name}" for name, s in result.subsets.items())
    print_table(
        f"projection catch-up, {result.events:,} log events ({notifications} notifications),"
        f" page size {result.page_size}, median of {result.repeat}",
        [
            "runner",
            "median s",
            "log events/s",
            "applied/s",
            "members / outbox s",
            "runs s",
        ],
        rows,
    )
    pairs = ", ".join(f"{r:.1f}x" for r in result.pair_ratios)
    print(
        f"ratio (library time / our time): {result.ratio:.1f}x of the medians"
        f" (per repeat: {pairs});"
        f" rows identical on both sides: {result.members_rows:,} members,"
        f" {result.outbox_rows:,} outbox"
    )
    print(
        f"catch-up rate / raw paged read rate: {result.raw_ratio:.2f} (target 0.3;"
        " both in log events per second)"
    )
    busy = sum(run.lock_busy for run in result.ours)
    print(
        f"load average before {result.load_before}, after {result.load_after}"
        + (f"; page runner found its advisory lock busy {busy} time(s)" if busy else "")
    )
    print_json_line(result.as_dict())


def main(args: argparse.Namespace) -> int:
    settings_default = Settings.model_fields["projection_page_size"].default
    page_size = int(args.page_size or settings_default)
    if args.events < 1 or args.repeat < 1:
        raise SystemExit("--events and --repeat must be positive")
    result = measure(
        events=args.events,
        repeat=args.repeat,
        page_size=page_size,
        seed=args.seed,
        restaurants=args.restaurants,
    )
    report(result)
    return 0


def catch_up_from_zero(service: AssignmentService) -> Run:
    """Our side alone, once: both projections caught up from position 0 with fresh page
    runners, the read models emptied first (``bench suite`` times this beside the raw paged
    read of the same log). The service's store must be PostgreSQL."""
    recorder = service.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    _truncate_read_models(service.read_models)
    subsets = _subsets(
        service.settings.postgres_conninfo(),
        service.settings.postgres_schema,
        recorder.events_table_name,
    )
    return run_ours(service, subsets)
