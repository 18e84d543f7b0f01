"""``seatledger demo``: one simulated service day of one restaurant, end to end.

The demo drives the public :class:`~seatledger.application.service.AssignmentService` API only
(pydantic commands in, results or :class:`~seatledger.domain.errors.SeatLedgerError` out) the
way a busy front of house would. Most parties are seated by ``auto_assign``, many of them quoted
ahead (a 15-minute hold) and confirmed later; hosts seat the rest by hand: they hold tables and
confirm them, seat parties directly, move and unseat them, re-send commands after "timeouts",
let holds lapse and misread the floor. A manager changes the layout and the policy mid-service
while holds and quotes are open, so confirms drift: auto-assign recovers by re-quoting, except
on terminals with drift retry switched off. Large parties late in a full service find no
candidate. Time is a :class:`~seatledger.application.clock.ManualClock`; every random choice
comes from one ``random.Random(seed)`` and every command id is derived from a counter, so one
seed always writes the same event log and yields the same report (except the wall time).

Afterwards the floor is checked for double bookings *independently* of the domain: every
booking's tables and window are read back through ``get_day`` (during the service and at the
end) and any two bookings sharing a table in overlapping half-open windows are counted. The
read side is checked against what the demo saw: once the projections caught up, the outbox must
hold one ``capacity.assignment.sync`` per command that changed a booking's table set and one
``capacity.hold.confirmed`` per confirmed hold (both counted from the results the demo got
back), and the members read model must have a row for every table assigned at close.

:func:`run_demo` returns a :class:`DemoReport`; printing is the CLI's job.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import random
import sqlite3
import time as wall
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from seatledger.application.clock import ManualClock
from seatledger.application.commands import (
    AssignTables,
    AutoAssign,
    CancelBooking,
    ChangePolicy,
    Command,
    CompleteBooking,
    ConfirmHold,
    CreateRestaurant,
    DefineTable,
    ExpireHolds,
    LinkTables,
    MarkNoShow,
    PlaceHold,
    QuoteBooking,
    RegisterBooking,
    ReleaseHold,
    UnassignTables,
    UnlinkTables,
)
from seatledger.application.errors import InfrastructureError
from seatledger.application.results import AssignmentResult, AutoAssignResult, BookingView, DayView
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.errors import (
    PolicyDriftError,
    PolicyRequoteFailedError,
    SeatLedgerError,
)
from seatledger.domain.layout import Table, Zone, edge, layout_id
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.values import Window
from seatledger.projections.messages import HOLD_CONFIRMED, POLICY_DRIFT, SYNC
from seatledger.projections.queries import all_members, outbox_counts

#: The demo's restaurant. Its layout aggregate in a database marks the file as a demo database.
RESTAURANT_ID = "demo-bistro"
#: A winter Tuesday: London runs on UTC, so local and stored instants read the same.
SERVICE_DATE = date(2026, 11, 24)
TIMEZONE = "Europe/London"
DEFAULT_DB_PATH = Path("seatledger-demo.db")
DEFAULT_SEED = 42

_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")
_HOSTS = ("host-ana", "host-ben", "host-cleo")
_MANAGER = "manager-dana"
_PARTY_SIZES = (2, 3, 4, 5, 6, 7, 8)
_PARTY_WEIGHTS = (40, 12, 26, 7, 8, 4, 3)
#: A coach party: more guests than any table or combination of three seats.
_LARGE_GROUP = 14
#: A meal blocks its tables for four to six quarter-hours; the platform fills a quarter-hour
#: up to this share of the active tables.
_MAX_MEAL_SLOTS = 6
_LOAD_FACTOR = 1.1
#: Most parties are seated by auto-assign; the hosts seat the rest by hand.
_AUTO_SHARE = 0.75
#: Of the auto-assigned bookings, these are quoted ahead (a long hold) and confirmed later.
_QUOTE_AHEAD_SHARE = 0.8
_QUOTE_TTL_SECONDS = 900
#: Quoted bookings whose terminal runs auto-assign with drift retry switched off.
_NO_RETRY_SHARE = 0.25

C = TypeVar("C", bound=Command)
R = TypeVar("R")


class DemoConfig(BaseModel):
    """How busy the simulated day is (tests use a smaller day)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lunch_bookings: int = Field(default=62, ge=0)
    dinner_bookings: int = Field(default=128, ge=0)
    walk_ins: int = Field(default=16, ge=0)
    #: Requests for a table after the kitchen's last seating: rejected with SERVICE_OVERRUN.
    late_requests: int = Field(default=2, ge=0)
    #: Walk-in groups larger than any table or combination: auto-assign finds NO_CAPACITY.
    large_groups: int = Field(default=1, ge=0)


class AutoAssignReport(BaseModel):
    """What ``auto_assign`` did. ``attempted`` = ``succeeded`` + ``replayed`` +
    ``already_assigned`` + ``no_candidate`` + the failures in ``failed_by_code``."""

    model_config = ConfigDict(frozen=True)

    attempted: int = 0
    succeeded: int = 0
    #: Succeeded after a drift: the stale hold was released, re-quoted and confirmed.
    drift_recovered: int = 0
    #: Failed for drift: POLICY_DRIFT (retry off, or attempts used up) plus
    #: POLICY_REQUOTE_FAILED (no candidate left after the drift).
    drift_failed: int = 0
    #: Every auto-assign that raised, by error code (drift failures included).
    failed_by_code: dict[str, int] = Field(default_factory=dict)
    no_candidate: int = 0
    no_candidate_by_reason: dict[str, int] = Field(default_factory=dict)
    #: The same command re-sent after a timeout: the original result came back.
    replayed: int = 0
    #: The booking had tables already (a new auto-assign for a seated party).
    already_assigned: int = 0
    #: Bookings quoted ahead (QuoteBooking, a 15-minute hold) and auto-assigned later.
    early_quotes: int = 0
    #: Live holds of the booking right after a failed or candidate-less auto-assign: must be 0.
    holds_left_after_failure: int = 0


class DemoReport(BaseModel):
    """What the simulated day did. Add a field (with a default) to report more."""

    model_config = ConfigDict(frozen=True)

    seed: int
    restaurant_id: str
    service_date: date
    zones: int
    tables: int
    #: Bookings registered (walk-ins included).
    bookings: int
    walk_ins: int
    #: Service commands attempted (setup, layout changes and the sweeper included).
    commands: int
    succeeded: int
    rejected: int
    rejected_by_code: dict[str, int]
    #: Drift met by the hosts' confirms and by auto-assign runs (recovered or not), by kind.
    drift_by_kind: dict[str, int]
    holds_placed: int
    holds_replaced: int
    #: Holds confirmed: by the hosts' confirms and by auto-assign (one hold.confirmed each).
    holds_confirmed: int
    holds_released: int
    holds_expired: int
    direct_assignments: int
    moves: int
    unassigns: int
    replays: int
    #: Cancellations include walk-ins turned away for want of a free table.
    cancellations: int
    turned_away: int
    no_shows: int
    completions: int
    layout_changes: int
    #: Bookings that never got a table (booked, not cancelled, still pending at the end).
    unseated: int
    final_status: dict[str, int]
    #: Floor scans done for double bookings (every 30 simulated minutes and at the end).
    double_booking_scans: int
    #: Distinct pairs of bookings found sharing a table in overlapping windows, over all scans.
    double_bookings: int
    #: Bookings by how they first got tables: auto (auto-assign), hold (a host's confirm),
    #: manual (a host's direct assign).
    seated_by_source: dict[str, int] = Field(default_factory=dict)
    auto_assign: AutoAssignReport = Field(default_factory=AutoAssignReport)
    #: Successful, non-replayed commands that changed a booking's table set, counted from
    #: the results the demo got back; ``sync_messages`` must equal it.
    table_set_changing_commands: int = 0
    #: Member entries with assignment id "" (not yet visible) in those results.
    results_with_empty_id: int = 0
    #: The read side once the projections caught up: outbox rows by type ...
    sync_messages: int = 0
    hold_confirmed_messages: int = 0
    drift_messages: int = 0
    #: ... and the members read model against the floor ``get_day`` shows at close:
    #: its rows, the (booking, table) pairs assigned, and those pairs without a member row.
    members_rows: int = 0
    assigned_at_close: int = 0
    members_with_empty_id: int = 0
    seconds: float

    def to_json(self) -> str:
        """One JSON object with sorted keys (the ``--json`` output): same seed, same text,
        but for ``seconds``."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


class DemoDatabaseError(Exception):
    """The demo will not touch this path (it is not a demo database, or not a file)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# --- the database the demo owns -------------------------------------------------------------


def is_demo_database(path: Path) -> bool:
    """A SQLite event store holding the demo restaurant's layout aggregate.

    Read-only: a file that is not a demo database is never written to by this check.
    """
    marker = layout_id(RESTAURANT_ID)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute(
            "SELECT 1 FROM stored_events WHERE originator_id IN (?, ?) LIMIT 1",
            (marker.hex, str(marker)),
        ).fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None


def prepare_database(path: Path, *, overwrite: bool = False) -> None:
    """Delete a previous demo database (and its -wal/-shm files) so the day starts empty.

    Anything else at ``path`` is refused unless ``overwrite`` is set: the demo must never
    destroy a real event store because of a typo in ``--db``.
    """
    if path.is_dir():
        raise DemoDatabaseError(
            f"{path} is a directory",
            "Pass --db a file path, e.g. --db seatledger-demo.db.",
        )
    if path.exists() and not overwrite and not is_demo_database(path):
        raise DemoDatabaseError(
            f"{path} exists and is not a seatledger demo database",
            "Choose another --db path, or pass --overwrite to delete it.",
        )
    for candidate in (path, *(path.with_name(path.name + s) for s in _SQLITE_SIBLINGS)):
        try:
            candidate.unlink(missing_ok=True)
        except OSError as exc:
            raise DemoDatabaseError(
                f"cannot delete {candidate}: {exc.strerror or exc}",
                "Check the file's permissions, or pass another --db path.",
            ) from exc


# --- the independent double-booking check ---------------------------------------------------


def find_double_bookings(bookings: Iterable[BookingView]) -> list[tuple[str, str]]:
    """Pairs of distinct bookings sharing a table with overlapping half-open windows.

    Deliberately does not use the domain's overlap code: it is the check on that code.
    """
    by_table: dict[str, list[BookingView]] = {}
    for view in bookings:
        for table_id in view.table_ids:
            by_table.setdefault(table_id, []).append(view)
    pairs: set[tuple[str, str]] = set()
    for views in by_table.values():
        for a, b in itertools.combinations(views, 2):
            if a.booking_id == b.booking_id:
                continue
            if a.window.start < b.window.end and b.window.start < a.window.end:
                first, second = sorted((a.booking_id, b.booking_id))
                pairs.add((first, second))
    return sorted(pairs)


# --- the floor ------------------------------------------------------------------------------


def demo_floor() -> CreateRestaurant:
    """Five zones and 41 tables: rows of movable 2-tops and 4-tops joined by adjacency edges,
    fixed 4-, 6- and 10-tops, bar stools and one broken (inactive) bar table."""
    zones = [
        Zone(zone_id="main", name="Main room"),
        Zone(zone_id="window", name="Window", preference=1),
        Zone(zone_id="terrace", name="Heated terrace", preference=2),
        Zone(zone_id="bar", name="Bar", preference=3),
        Zone(zone_id="private", name="Private room", preference=4),
    ]
    tables = [
        *(Table(table_id=f"M{i}", zone_id="main", capacity=2, movable=True) for i in range(1, 11)),
        *(Table(table_id=f"M{i}", zone_id="main", capacity=4) for i in range(11, 17)),
        *(Table(table_id=f"M{i}", zone_id="main", capacity=6, min_party_size=4) for i in (17, 18)),
        *(Table(table_id=f"W{i}", zone_id="window", capacity=2, movable=True) for i in range(1, 7)),
        *(Table(table_id=f"W{i}", zone_id="window", capacity=4) for i in (7, 8, 9)),
        *(
            Table(table_id=f"T{i}", zone_id="terrace", capacity=4, movable=True)
            for i in range(1, 9)
        ),
        *(
            Table(table_id=f"B{i}", zone_id="bar", capacity=2, max_party_size=2)
            for i in range(1, 5)
        ),
        Table(table_id="B5", zone_id="bar", capacity=2, label="wobbly", active=False),
        Table(table_id="P1", zone_id="private", capacity=10, min_party_size=6),
    ]
    adjacency = [
        *((f"M{i}", f"M{i + 1}") for i in range(1, 10)),
        ("W1", "W2"),
        ("W2", "W3"),
        ("W4", "W5"),
        ("W5", "W6"),
        *((f"T{i}", f"T{i + 1}") for i in range(1, 8)),
    ]
    return CreateRestaurant(
        restaurant_id=RESTAURANT_ID,
        name="Demo Bistro",
        policy=VenuePolicy(timezone=TIMEZONE),
        zones=zones,
        tables=tables,
        adjacency=adjacency,
        actor_id=_MANAGER,
        actor_role="manager",
        command_id="demo-setup",
    )


# --- the simulation -------------------------------------------------------------------------


@dataclass
class _Party:
    booking_id: str
    party_size: int
    start: datetime
    walk_in: bool = False
    window: Window | None = None
    tables: tuple[str, ...] = ()
    closed: bool = False
    host: str = _HOSTS[0]
    attempts: int = 0
    #: Its quote awaiting auto-assign, if it was quoted ahead.
    quote: _Hold | None = None
    #: False: the terminal auto-assigning it has drift retry switched off.
    retry_on_drift: bool | None = None
    #: How it first got tables (auto, hold or manual).
    seated_by: str | None = None


@dataclass
class _Hold:
    hold_id: str
    booking_id: str
    tables: tuple[str, ...]
    window: Window
    expires_at: datetime
    #: When its confirm is due, if a confirm before expiry is planned.
    confirm_at: datetime | None = None
    #: Confirmed, replaced or released: no step of the hosts touches it any more.
    settled: bool = False


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    run: Callable[[], None] = field(compare=False)


@dataclass
class _Incident:
    """A manager's change, due at a time, fired once the eligible open holds are enough to
    make it a drift test (after ``patience``, any one of them will do)."""

    due: datetime
    fire: Callable[[list[_Hold]], None]
    eligible: Callable[[_Hold], bool] = lambda _hold: True
    enough: Callable[[list[_Hold]], bool] = bool
    patience: timedelta = timedelta(minutes=30)
    done: bool = False


@dataclass
class _AutoTally:
    attempted: int = 0
    succeeded: int = 0
    drift_recovered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    no_candidate: Counter[str] = field(default_factory=Counter)
    replayed: int = 0
    already_assigned: int = 0
    early_quotes: int = 0
    holds_left_after_failure: int = 0

    def report(self) -> AutoAssignReport:
        drift_codes = ("POLICY_DRIFT", "POLICY_REQUOTE_FAILED")
        return AutoAssignReport(
            attempted=self.attempted,
            succeeded=self.succeeded,
            drift_recovered=self.drift_recovered,
            drift_failed=sum(self.failed[code] for code in drift_codes),
            failed_by_code=dict(sorted(self.failed.items())),
            no_candidate=sum(self.no_candidate.values()),
            no_candidate_by_reason=dict(sorted(self.no_candidate.items())),
            replayed=self.replayed,
            already_assigned=self.already_assigned,
            early_quotes=self.early_quotes,
            holds_left_after_failure=self.holds_left_after_failure,
        )


@dataclass
class _Tally:
    commands: int = 0
    succeeded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    drift: Counter[str] = field(default_factory=Counter)
    holds_placed: int = 0
    holds_replaced: int = 0
    holds_confirmed: int = 0
    holds_released: int = 0
    holds_expired: int = 0
    direct_assignments: int = 0
    moves: int = 0
    unassigns: int = 0
    replays: int = 0
    cancellations: int = 0
    turned_away: int = 0
    no_shows: int = 0
    completions: int = 0
    layout_changes: int = 0
    scans: int = 0
    double_bookings: set[tuple[str, str]] = field(default_factory=set)
    seated_by: Counter[str] = field(default_factory=Counter)
    table_set_changes: int = 0
    results_with_empty_id: int = 0
    auto: _AutoTally = field(default_factory=_AutoTally)


class _ServiceDay:
    """One restaurant's day as a queue of timed steps, run against the service in time order.

    The hosts keep their own picture of the floor (from the results they get back) to pick
    tables; it can be wrong, and the service's rejections are part of the show.
    """

    def __init__(self, service: AssignmentService, clock: ManualClock, seed: int) -> None:
        self.service = service
        self.clock = clock
        self.rng = random.Random(seed)
        self.tz = ZoneInfo(TIMEZONE)
        self.tally = _Tally()
        self.parties: dict[str, _Party] = {}
        self.holds: dict[str, _Hold] = {}
        self.tables: dict[str, Table] = {}
        self.zone_rank: dict[str, int] = {}
        self.edges: set[tuple[str, str]] = set()
        self.policy = VenuePolicy(timezone=TIMEZONE)
        self.combos: list[tuple[str, ...]] = []
        self.assigned: dict[str, dict[str, Window]] = {}
        self.incidents: list[_Incident] = []
        self._queue: list[_Step] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)

    # --- plumbing ---

    def local(self, hh: int, mm: int, ss: int = 0) -> datetime:
        return datetime.combine(SERVICE_DATE, time(hh, mm, ss), tzinfo=self.tz).astimezone(UTC)

    def now(self) -> datetime:
        return self.clock.now()

    def at(self, moment: datetime, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Step(max(moment, self.now()), next(self._seq), run))

    def after(self, seconds: float, run: Callable[[], None]) -> None:
        self.at(self.now() + timedelta(seconds=seconds), run)

    def cid(self, label: str) -> str:
        """Deterministic command ids: the same seed writes the same event log."""
        return f"demo-{next(self._ids):05d}-{label}"

    def send(self, call: Callable[[C], R], command: C) -> R | SeatLedgerError:
        """One service command; a rejection is counted and returned, never raised.
        Infrastructure failures are not part of the show: they end the demo."""
        self.tally.commands += 1
        try:
            result = call(command)
        except InfrastructureError:
            raise
        except SeatLedgerError as err:
            self.tally.rejected[str(err.code)] += 1
            if isinstance(err, PolicyDriftError):
                self.tally.drift[err.kind] += 1
            elif isinstance(err, PolicyRequoteFailedError):
                self.tally.drift[str(err.details.get("kind"))] += 1
            return err
        self.tally.succeeded += 1
        assignment = result.assignment if isinstance(result, AutoAssignResult) else result
        if isinstance(assignment, AssignmentResult):
            self.observe(assignment)
        return result

    def observe(self, result: AssignmentResult) -> None:
        """Every assignment result updates the hosts' picture of the floor and the counts the
        read side is checked against: a successful, non-replayed command that changed the
        booking's table set owes one sync message, a confirmed hold one hold.confirmed."""
        self.tally.results_with_empty_id += sum(1 for m in result.members if not m.assignment_id)
        if result.replayed:
            self.tally.replays += 1
        if result.replayed or not result.changed:
            return
        if result.hold_id is not None:
            self.tally.holds_confirmed += 1
        party = self.parties[result.booking_id]
        tables = tuple(result.table_ids)
        if tables == party.tables:
            return
        self.tally.table_set_changes += 1
        if party.seated_by is None and tables and result.source is not None:
            party.seated_by = result.source
            self.tally.seated_by[result.source] += 1
        self.set_tables(party, tables)

    def run(self, until: datetime) -> None:
        while self._queue and self._queue[0].at <= until:
            step = heapq.heappop(self._queue)
            self.clock.set(step.at)
            step.run()
            self.check_incidents()

    # --- the hosts' picture of the floor ---

    def load_layout(self, command: CreateRestaurant) -> None:
        self.tables = {t.table_id: t for t in command.tables}
        self.zone_rank = {z.zone_id: z.preference for z in command.zones}
        self.edges = {edge(a, b) for a, b in command.adjacency}
        self.policy = command.policy
        self.recompute_combos()

    def recompute_combos(self) -> None:
        """Connected groups of 2-3 movable tables of one zone, as the hosts know the floor."""
        neighbours: dict[str, set[str]] = {t: set() for t in self.tables}
        for a, b in self.edges:
            neighbours[a].add(b)
            neighbours[b].add(a)
        combos: list[tuple[str, ...]] = []
        by_zone: dict[str, list[str]] = {}
        for table in self.tables.values():
            if table.movable and table.active:
                by_zone.setdefault(table.zone_id, []).append(table.table_id)
        for ids in by_zone.values():
            for size in (2, 3):
                for group in itertools.combinations(sorted(ids), size):
                    if _connected(group, neighbours):
                        combos.append(group)
        self.combos = combos

    def fits(self, tables: Sequence[str], party_size: int) -> bool:
        chosen = [self.tables[t] for t in tables]
        capacity = sum(t.capacity for t in chosen)
        if not 0 <= capacity - party_size <= self.policy.slack_budget:
            return False
        if len(chosen) == 1:
            only = chosen[0]
            return (only.min_party_size or 0) <= party_size <= (only.max_party_size or 99)
        return True

    def busy(self, tables: Sequence[str], party: _Party) -> bool:
        assert party.window is not None
        window, now = party.window, self.now()
        for table_id in tables:
            for booking_id, other in self.assigned.get(table_id, {}).items():
                if booking_id != party.booking_id and _overlap(window, other):
                    return True
        for hold in self.holds.values():
            if (
                hold.booking_id != party.booking_id
                and now < hold.expires_at
                and set(hold.tables) & set(tables)
                and _overlap(window, hold.window)
            ):
                return True
        return False

    def held_by_other(self, tables: Sequence[str], party: _Party) -> bool:
        now = self.now()
        return any(
            hold.booking_id != party.booking_id
            and now < hold.expires_at
            and set(hold.tables) & set(tables)
            for hold in self.holds.values()
        )

    def candidates(self, party: _Party, *, free: bool = True) -> list[tuple[str, ...]]:
        """Table sets that fit the party, best first (least slack, fewest tables, zone)."""
        singles = [(t.table_id,) for t in self.tables.values() if t.active]
        fitting = [
            c
            for c in (*singles, *self.combos)
            if self.fits(c, party.party_size) and self.busy(c, party) != free
        ]
        return sorted(
            fitting,
            key=lambda c: (
                sum(self.tables[t].capacity for t in c) - party.party_size,
                len(c),
                self.zone_rank[self.tables[c[0]].zone_id],
                c,
            ),
        )

    def pick(self, options: list[tuple[str, ...]]) -> tuple[str, ...]:
        return self.rng.choice(options[:3])

    def set_tables(self, party: _Party, tables: Sequence[str]) -> None:
        for table_id in party.tables:
            self.assigned.get(table_id, {}).pop(party.booking_id, None)
        party.tables = tuple(tables)
        assert party.window is not None or not tables
        for table_id in party.tables:
            assert party.window is not None
            self.assigned.setdefault(table_id, {})[party.booking_id] = party.window

    def settle(self, hold: _Hold) -> None:
        """Confirmed, replaced or released: the hold blocks nothing in the hosts' picture."""
        hold.settled = True
        self.holds.pop(hold.hold_id, None)

    def drop_holds(self, booking_id: str) -> None:
        for hold in [h for h in self.holds.values() if h.booking_id == booking_id]:
            self.settle(hold)

    # --- the day ---

    def setup(self, config: DemoConfig) -> None:
        floor = demo_floor()
        self.clock.set(self.local(7, 30))
        outcome = self.send(self.service.create_restaurant, floor)
        if isinstance(outcome, SeatLedgerError):
            raise outcome
        self.load_layout(floor)
        rng = self.rng
        services = (
            ("lunch", self.local(12, 0), 11, config.lunch_bookings),
            ("dinner", self.local(17, 0), 19, config.dinner_bookings),
        )
        for name, first, slots, count in services:
            load = [0.0] * (slots + _MAX_MEAL_SLOTS)
            admitted = 0
            for _request in range(3 * count):  # requests the platform turns down are lost
                if admitted == count:
                    break
                size = self.party_size()
                start = self.admit(first, load, size)
                if start is not None:
                    admitted += 1
                    self.book(f"{name}-{admitted:03d}", start, size)
        for n in range(config.walk_ins):
            arrival = self.local(12, 10) + timedelta(minutes=rng.randint(0, 120))
            if n >= config.walk_ins // 3:
                arrival = self.local(17, 20) + timedelta(minutes=rng.randint(0, 220))
            self.book(f"walk-in-{n + 1:02d}", arrival, self.party_size(), walk_in=True)
        for n in range(config.large_groups):
            arrival = self.local(19, 0) + timedelta(minutes=rng.randint(0, 90))
            self.book(f"walk-in-group-{n + 1:02d}", arrival, _LARGE_GROUP, walk_in=True)
        for n in range(config.late_requests):
            asked = self.local(20, 30) + timedelta(minutes=rng.randint(0, 60))
            self.at(asked, functools.partial(self.late_request, n))
        for hh in range(12, 23):
            for mm in (0, 30):
                self.at(self.local(hh, mm), self.scan)
        for hh in range(11, 23):
            for mm in (0, 15, 30, 45):
                self.at(self.local(hh, mm, 30), self.sweep)
        self.plan_incidents()

    def party_size(self) -> int:
        return self.rng.choices(_PARTY_SIZES, weights=_PARTY_WEIGHTS)[0]

    def admit(self, first: datetime, load: list[float], size: int) -> datetime | None:
        """The booking platform offers only quarter-hours with room (a rough seat count),
        so the floor is busy but not hopelessly overbooked."""
        need = 1.0 if size <= 4 else 2.0
        span = 4 if size <= 2 else 5 if size <= 4 else 6
        slots = len(load) - _MAX_MEAL_SLOTS
        cap = _LOAD_FACTOR * sum(1 for t in self.tables.values() if t.active)
        open_slots = [i for i in range(slots) if max(load[i : i + span]) + need <= cap]
        if not open_slots:
            return None
        slot = self.rng.choice(open_slots)
        for i in range(slot, slot + span):
            load[i] += need
        return first + timedelta(minutes=15 * slot)

    def book(self, booking_id: str, start: datetime, size: int, *, walk_in: bool = False) -> None:
        rng = self.rng
        if walk_in:
            registered = start
        else:
            earliest = self.local(8, 0)
            registered = max(earliest, start - timedelta(minutes=rng.randint(60, 600)))
            registered += timedelta(seconds=rng.randint(0, 59))
        party = _Party(booking_id, size, start, walk_in=walk_in)
        party.host = rng.choice(_HOSTS)
        self.parties[booking_id] = party
        self.at(registered, lambda: self.register(party))
        roll = rng.random()
        if walk_in:
            by_hand = size <= _PARTY_SIZES[-1] and rng.random() >= _AUTO_SHARE
            seat = self.seat_directly if by_hand else self.auto
            self.at(registered + timedelta(seconds=30), lambda: seat(party))
            return
        # hosts plan each quarter-hour's bookings in one go, 40 minutes ahead
        planning = start - timedelta(minutes=40) + timedelta(seconds=rng.randint(0, 300))
        self.at(max(planning, registered + timedelta(minutes=1)), lambda: self.plan(party))
        if roll < 0.08:
            span = max(60, int((start - registered).total_seconds()))
            self.at(
                registered + timedelta(seconds=rng.randint(30, span)),
                lambda: self.close(party, "cancel"),
            )
        elif roll < 0.13:
            self.at(start + timedelta(minutes=15), lambda: self.close(party, "no_show"))

    def register(self, party: _Party) -> None:
        local = party.start.astimezone(self.tz)
        outcome = self.send(
            self.service.register_booking,
            RegisterBooking(
                restaurant_id=RESTAURANT_ID,
                booking_id=party.booking_id,
                party_size=party.party_size,
                service_date=SERVICE_DATE,
                start_time=local.time().replace(tzinfo=None),
                command_id=self.cid("register"),
                actor_id=party.host,
            ),
        )
        if isinstance(outcome, SeatLedgerError):
            party.closed = True
            return
        party.window = outcome.window
        self.maybe_complete(party)

    def late_request(self, n: int) -> None:
        """A guest asks for 21:57; dinner ends at 22:00 without overrun: SERVICE_OVERRUN."""
        self.send(
            self.service.register_booking,
            RegisterBooking(
                restaurant_id=RESTAURANT_ID,
                booking_id=f"late-{n + 1:02d}",
                party_size=2,
                service_date=SERVICE_DATE,
                start_time=time(21, 57),
                command_id=self.cid("register"),
                actor_id=_HOSTS[n % len(_HOSTS)],
            ),
        )

    def maybe_complete(self, party: _Party) -> None:
        """Most seated parties are closed when they leave; hosts forget some."""
        assert party.window is not None
        if self.rng.random() < 0.65:
            leaves = party.window.end - timedelta(minutes=5)
            self.at(leaves, lambda: self.close(party, "complete") if party.tables else None)

    def ready(self, party: _Party) -> bool:
        return party.window is not None and not party.closed

    # --- seating ---

    def plan(self, party: _Party) -> None:
        """A booking is planned 40 minutes ahead: mostly by auto-assign (most of those are
        quoted ahead), else a host picks tables: usually hold then confirm, else seat directly."""
        if not self.ready(party) or party.tables:
            return
        roll = self.rng.random()
        if roll < _AUTO_SHARE * _QUOTE_AHEAD_SHARE:
            self.quote_ahead(party)
        elif roll < _AUTO_SHARE:
            self.auto(party)
        else:
            self.seat(party, direct=self.rng.random() < 0.35)

    def no_table(self, party: _Party, look_again: Callable[[], None]) -> None:
        """Nothing free: a walk-in is turned away, a booking waits and is looked at again."""
        if party.walk_in:
            self.tally.turned_away += 1
            self.close(party, "cancel")
        elif self.now() < party.start + timedelta(minutes=10):
            self.after(300, look_again)

    # --- seating: auto-assign ---

    def quote_ahead(self, party: _Party) -> None:
        """The platform quotes the booking now (a 15-minute hold) and auto-assigns it later,
        usually before the hold lapses; a manager's change in between makes it drift."""
        if self.rng.random() < _NO_RETRY_SHARE:
            party.retry_on_drift = False
        outcome = self.send(
            self.service.quote,
            QuoteBooking(
                restaurant_id=RESTAURANT_ID,
                booking_id=party.booking_id,
                ttl_seconds=_QUOTE_TTL_SECONDS,
                command_id=self.cid("quote"),
                actor_id=party.host,
            ),
        )
        if self.rng.random() < 0.1:  # nobody gets to it in time: the quote lapses
            delay = self.rng.randint(_QUOTE_TTL_SECONDS + 30, _QUOTE_TTL_SECONDS + 300)
        else:
            delay = self.rng.randint(120, _QUOTE_TTL_SECONDS - 60)
        if not isinstance(outcome, SeatLedgerError) and outcome.hold is not None:
            self.tally.auto.early_quotes += 1
            held = outcome.hold
            party.quote = _Hold(
                held.hold_id,
                party.booking_id,
                tuple(held.table_ids),
                held.window,
                held.expires_at,
                confirm_at=self.now() + timedelta(seconds=delay),
            )
            self.holds[held.hold_id] = party.quote
        self.after(delay, lambda: self.auto(party))

    def auto(self, party: _Party) -> None:
        """Auto-assign: the service confirms the party's live quote, or quotes and confirms;
        on drift it re-quotes unless the terminal switched retry off."""
        if not self.ready(party) or party.tables:
            return
        command = AutoAssign(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            retry_on_drift=party.retry_on_drift,
            command_id=self.cid("auto"),
            actor_id=party.host,
        )
        outcome = self.auto_assign(command)
        if party.quote is not None:  # confirmed, released or lapsed: it blocks nothing now
            self.settle(party.quote)
            party.quote = None
        if isinstance(outcome, SeatLedgerError):
            party.retry_on_drift = None  # the host tries again, with the usual terminal
            party.attempts += 1
            if party.attempts <= 4:
                self.after(60, lambda: self.auto(party))
        elif outcome.outcome == "no_candidate":
            self.no_table(party, lambda: self.auto(party))
        elif outcome.outcome == "assigned":
            self.seated(party)
            if self.rng.random() < 0.06:  # timeout on the reply: the very same command again
                self.after(2, lambda: self.resend(command))

    def auto_assign(self, command: AutoAssign) -> AutoAssignResult | SeatLedgerError:
        """One auto-assign, tallied by outcome. After a failure or no candidate the booking
        must be left without a live hold (domain.md 9 and 15): read the day back to check."""
        auto = self.tally.auto
        auto.attempted += 1
        outcome = self.send(self.service.auto_assign, command)
        if isinstance(outcome, SeatLedgerError):
            auto.failed[str(outcome.code)] += 1
        elif outcome.outcome == "no_candidate":
            auto.no_candidate[str(outcome.reason)] += 1
        elif outcome.outcome == "already_assigned":
            auto.already_assigned += 1
            return outcome
        elif outcome.assignment is not None and outcome.assignment.replayed:
            auto.replayed += 1
            return outcome
        else:
            auto.succeeded += 1
            if outcome.drift_recovered:
                auto.drift_recovered += 1
                self.tally.drift[str(outcome.drift_kind)] += 1
            return outcome
        day = self.service.get_day(RESTAURANT_ID, SERVICE_DATE)
        auto.holds_left_after_failure += sum(
            1 for h in day.holds if h.booking_id == command.booking_id and h.status == "live"
        )
        return outcome

    # --- seating: by hand ---

    def seat_directly(self, party: _Party) -> None:
        self.seat(party, direct=True)

    def seat(self, party: _Party, *, direct: bool) -> None:
        if not self.ready(party) or party.tables:
            return
        free = self.candidates(party)
        if not free:
            self.no_table(party, lambda: self.seat(party, direct=True))
            return
        party.attempts += 1
        if party.attempts > 4:
            return
        self.misread(party, direct=direct)
        if party.tables:  # the host's picture was wrong and the "taken" table was free
            return
        tables = self.pick(free)
        if direct:
            self.assign(party, tables)
        else:
            self.hold(party, tables)

    def misread(self, party: _Party, *, direct: bool) -> None:
        """Now and then a host tries a table that is taken, or too small."""
        roll = self.rng.random()
        if roll < 0.07:
            taken = self.candidates(party, free=False)
            held = [c for c in taken if self.held_by_other(c, party)]
            if held and self.rng.random() < 0.5:
                taken = held
            if taken:
                tables = self.pick(taken)
                if direct:
                    self.assign(party, tables, retry=False)
                else:
                    self.hold(party, tables, retry=False)
        elif roll < 0.09 and party.party_size > 2:
            small = [t.table_id for t in self.tables.values() if t.active and t.capacity == 2]
            self.assign(party, (self.rng.choice(small),), retry=False)

    def hold(
        self,
        party: _Party,
        tables: Sequence[str],
        *,
        retry: bool = True,
        replaces: _Hold | None = None,
        quick: bool = False,
    ) -> None:
        assert party.window is not None
        command = PlaceHold(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            table_ids=list(tables),
            replaces_hold_id=None if replaces is None else replaces.hold_id,
            command_id=self.cid("hold"),
            actor_id=party.host,
        )
        outcome = self.send(self.service.place_hold, command)
        if isinstance(outcome, SeatLedgerError):
            if retry:
                self.after(20, lambda: self.seat(party, direct=False))
            return
        if self.rng.random() < 0.05:  # the reply was lost: the host sends it again
            again = self.send(self.service.place_hold, command)
            assert isinstance(again, SeatLedgerError) or again.hold_id == outcome.hold_id
        self.tally.holds_placed += 1
        if replaces is not None:
            self.settle(replaces)
            self.tally.holds_replaced += 1
        hold = _Hold(
            outcome.hold_id,
            party.booking_id,
            tuple(outcome.table_ids),
            party.window,
            outcome.expires_at,
        )
        self.holds[hold.hold_id] = hold
        if not retry:
            return
        rng = self.rng
        roll = rng.random()
        if not quick and roll < 0.08:
            # the host is pulled away: the confirm comes after the hold expired
            delay = rng.randint(200, 420)
            self.after(delay, lambda: self.confirm(party, hold))
            return
        delay = rng.randint(3, 15) if quick else rng.randint(5, 90)
        if not quick and roll < 0.12:
            # the guest hesitates: the host lets the tables go and tries again later
            self.after(delay, lambda: self.release(party, hold, then_seat=True))
            return
        if not quick and roll < 0.24:
            alternatives = [c for c in self.candidates(party) if c != hold.tables]
            if alternatives:
                # the guest prefers another spot: a new hold replaces the first
                other = self.pick(alternatives)
                self.after(delay // 2, lambda: self.rehold(party, hold, other))
                return
        hold.confirm_at = self.now() + timedelta(seconds=delay)
        self.after(delay, lambda: self.confirm(party, hold))

    def rehold(self, party: _Party, old: _Hold, tables: Sequence[str]) -> None:
        if not self.ready(party) or party.tables or old.settled:
            return
        self.hold(party, tables, replaces=old, quick=True)

    def confirm(self, party: _Party, hold: _Hold) -> None:
        if not self.ready(party) or party.tables or hold.settled:
            return
        command_id = self.cid("confirm")
        # half the terminals send their own idempotency key, the others let it be derived
        key = f"key-{command_id}" if self.rng.random() < 0.5 else None
        command = ConfirmHold(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            hold_id=hold.hold_id,
            idempotency_key=key,
            command_id=command_id,
            actor_id=party.host,
        )
        outcome = self.send(self.service.confirm_hold, command)
        if isinstance(outcome, PolicyDriftError):
            # the floor changed under the hold: re-validate and hold again, replacing it
            fresh = self.candidates(party)
            if fresh:
                tables = hold.tables if hold.tables in fresh else self.pick(fresh)
                self.hold(party, tables, replaces=hold, quick=True)
            else:
                self.release(party, hold)
            return
        if isinstance(outcome, SeatLedgerError):
            if outcome.code == "HOLD_EXPIRED":
                self.sweep()
            self.settle(hold)
            self.after(30, lambda: self.seat(party, direct=False))
            return
        self.settle(hold)
        self.seated(party)
        roll = self.rng.random()
        if roll < 0.08:  # timeout on the reply: the very same command again
            self.after(2, lambda: self.resend(command))
        elif roll < 0.14:  # another terminal confirms the same hold again
            again = command.model_copy(update={"command_id": self.cid("confirm")})
            self.after(4, lambda: self.resend(again))

    def resend(self, command: ConfirmHold | AssignTables | AutoAssign) -> None:
        if isinstance(command, ConfirmHold):
            self.send(self.service.confirm_hold, command)
        elif isinstance(command, AssignTables):
            self.send(self.service.assign_tables, command)
        else:
            self.auto_assign(command)

    def release(self, party: _Party, hold: _Hold, *, then_seat: bool = False) -> None:
        outcome = self.send(
            self.service.release_hold,
            ReleaseHold(
                restaurant_id=RESTAURANT_ID,
                hold_id=hold.hold_id,
                command_id=self.cid("release"),
                actor_id=party.host,
            ),
        )
        self.settle(hold)
        if not isinstance(outcome, SeatLedgerError) and outcome.released:
            self.tally.holds_released += 1
        if then_seat:
            self.after(60, lambda: self.seat(party, direct=False))

    def assign(
        self,
        party: _Party,
        tables: Sequence[str],
        *,
        retry: bool = True,
        replace: bool = False,
    ) -> None:
        command_id = self.cid("move" if replace else "assign")
        key = f"key-{command_id}" if self.rng.random() < 0.5 else None
        command = AssignTables(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            table_ids=list(tables),
            idempotency_key=key,
            replace=replace,
            command_id=command_id,
            actor_id=party.host,
        )
        outcome = self.send(self.service.assign_tables, command)
        if isinstance(outcome, SeatLedgerError):
            if retry:
                self.after(20, lambda: self.seat(party, direct=True))
            return
        if replace:
            self.tally.moves += 1
        else:
            self.tally.direct_assignments += 1
        self.seated(party, moved=replace)
        roll = self.rng.random()
        if roll < 0.08:  # timeout on the reply: the very same command again
            self.after(3, lambda: self.resend(command))
        elif roll < 0.12 and key is not None:
            # a buggy terminal reuses the key for other tables: IDEMPOTENCY_MISMATCH
            others = [c for c in self.candidates(party) if c != party.tables]
            if others:
                wrong = command.model_copy(
                    update={"command_id": self.cid("assign"), "table_ids": list(others[0])}
                )
                self.after(5, lambda: self.resend(wrong))

    def seated(self, party: _Party, *, moved: bool = False) -> None:
        """The party has tables (``observe`` noted them): the guest may still ask to move,
        or the host may unseat it to reshuffle the floor."""
        if moved or party.walk_in:
            return
        roll = self.rng.random()
        until_start = max(60.0, (party.start - self.now()).total_seconds())
        if roll < 0.08:
            self.after(self.rng.uniform(30, until_start), lambda: self.move(party))
        elif roll < 0.13:
            self.after(self.rng.uniform(30, until_start), lambda: self.unseat(party))

    def move(self, party: _Party) -> None:
        """The guest asks for another spot: one command moves the party (replace=True)."""
        if not self.ready(party) or not party.tables:
            return
        options = [c for c in self.candidates(party) if c != party.tables]
        if options:
            self.assign(party, self.pick(options), retry=False, replace=True)

    def unseat(self, party: _Party) -> None:
        """The host frees a party's tables to reshuffle the floor, and seats it again later."""
        if not self.ready(party) or not party.tables:
            return
        outcome = self.send(
            self.service.unassign_tables,
            UnassignTables(
                restaurant_id=RESTAURANT_ID,
                booking_id=party.booking_id,
                command_id=self.cid("unassign"),
                actor_id=party.host,
            ),
        )
        if isinstance(outcome, SeatLedgerError):
            return
        self.tally.unassigns += 1
        party.attempts = 0
        self.after(300, lambda: self.seat(party, direct=self.rng.random() < 0.5))

    def close(self, party: _Party, how: str) -> None:
        if not self.ready(party):
            return
        base = {
            "restaurant_id": RESTAURANT_ID,
            "booking_id": party.booking_id,
            "command_id": self.cid(how),
            "actor_id": party.host,
        }
        outcome: AssignmentResult | SeatLedgerError
        if how == "cancel":
            outcome = self.send(self.service.cancel_booking, CancelBooking(**base))
        elif how == "no_show":
            outcome = self.send(self.service.mark_no_show, MarkNoShow(**base))
        else:
            outcome = self.send(self.service.complete_booking, CompleteBooking(**base))
        if isinstance(outcome, SeatLedgerError):
            return
        if how == "cancel":
            self.tally.cancellations += 1
        elif how == "no_show":
            self.tally.no_shows += 1
        else:
            self.tally.completions += 1
        party.closed = True
        self.drop_holds(party.booking_id)

    def sweep(self) -> None:
        """The hold sweeper: records expiries for the audit trail."""
        outcome = self.send(
            self.service.expire_holds,
            ExpireHolds(
                restaurant_id=RESTAURANT_ID,
                service_date=SERVICE_DATE,
                command_id=self.cid("sweep"),
                actor_id="sweeper",
                actor_role="system",
            ),
        )
        if isinstance(outcome, SeatLedgerError):
            return
        self.tally.holds_expired += len(outcome)
        for hold_id in outcome:
            self.holds.pop(hold_id, None)

    def scan(self) -> None:
        """Read the floor back and look for double bookings, independently of the domain."""
        day = self.service.get_day(RESTAURANT_ID, SERVICE_DATE)
        self.tally.scans += 1
        self.tally.double_bookings.update(find_double_bookings(day.bookings))

    # --- the manager's mid-service changes ---

    def plan_incidents(self) -> None:
        self.incidents = [
            _Incident(
                due=self.local(12, 30),
                fire=self.unlink_incident,
                eligible=lambda h: bool(self.edges_among(h.tables)),
            ),
            _Incident(due=self.local(18, 15), fire=self.table_incident),
            _Incident(
                due=self.local(19, 0),
                fire=self.policy_incident,
                enough=self.both_auto_outcomes,
                patience=timedelta(minutes=90),
            ),
        ]

    def both_auto_outcomes(self, holds: list[_Hold]) -> bool:
        """Open quotes whose auto-assign will retry a drift and one whose will not: a policy
        change now shows auto-assign recovering, and failing."""
        quoted = [
            self.parties[h.booking_id] for h in holds if self.parties[h.booking_id].quote is h
        ]
        return {party.retry_on_drift is not False for party in quoted} == {True, False}

    def check_incidents(self) -> None:
        now = self.now()
        for incident in self.incidents:
            if incident.done or now < incident.due:
                continue
            open_holds = [
                h
                for h in self.holds.values()
                if h.confirm_at is not None
                and now < h.confirm_at < h.expires_at
                and incident.eligible(h)
            ]
            late = now - incident.due > incident.patience
            if open_holds and (late or incident.enough(open_holds)):
                incident.done = True  # one attempt: a rejected change is not retried
                incident.fire(sorted(open_holds, key=lambda h: h.hold_id))

    def edges_among(self, tables: Sequence[str]) -> list[tuple[str, str]]:
        return sorted(e for e in self.edges if e[0] in tables and e[1] in tables)

    def layout_change(self, call: Callable[[C], object], command: C) -> bool:
        outcome = self.send(call, command)
        if isinstance(outcome, SeatLedgerError):
            return False
        self.tally.layout_changes += 1
        return True

    def unlink_incident(self, holds: list[_Hold]) -> None:
        """Staff pull two joined tables apart while a host holds them together."""
        target = self.rng.choice(holds)
        pair = self.rng.choice(self.edges_among(target.tables))
        command = UnlinkTables(
            restaurant_id=RESTAURANT_ID,
            edges=[pair],
            command_id=self.cid("unlink"),
            actor_id=_MANAGER,
            actor_role="manager",
        )
        if not self.layout_change(self.service.unlink_tables, command):
            return
        self.edges.discard(pair)
        self.recompute_combos()
        self.after(90 * 60, lambda: self.relink(pair))

    def relink(self, pair: tuple[str, str]) -> None:
        """The tables are lined up again before dinner."""
        command = LinkTables(
            restaurant_id=RESTAURANT_ID,
            edges=[pair],
            command_id=self.cid("link"),
            actor_id=_MANAGER,
            actor_role="manager",
        )
        if self.layout_change(self.service.link_tables, command):
            self.edges.add(pair)
            self.recompute_combos()

    def table_incident(self, holds: list[_Hold]) -> None:
        """An extra chair goes to a held table: its capacity changes under the hold."""
        target = self.rng.choice(holds)
        table = self.tables[self.rng.choice(target.tables)]
        changed = table.model_copy(update={"capacity": table.capacity + 1, "label": "extra chair"})
        command = DefineTable(
            restaurant_id=RESTAURANT_ID,
            table=changed,
            command_id=self.cid("table"),
            actor_id=_MANAGER,
            actor_role="manager",
        )
        if not self.layout_change(self.service.define_table, command):
            return
        self.tables[changed.table_id] = changed

    def policy_incident(self, holds: list[_Hold]) -> None:
        """The manager adds five minutes of turnover after every party, mid-service: new
        bookings get longer windows, and every hold placed before it drifts."""
        policy = self.policy.model_copy(
            update={"post_buffer_minutes": self.policy.post_buffer_minutes + 5}
        )
        command = ChangePolicy(
            restaurant_id=RESTAURANT_ID,
            policy=policy,
            command_id=self.cid("policy"),
            actor_id=_MANAGER,
            actor_role="manager",
        )
        if self.layout_change(self.service.change_policy, command):
            self.policy = policy


def _connected(group: Sequence[str], neighbours: dict[str, set[str]]) -> bool:
    chosen = set(group)
    seen = {group[0]}
    frontier = [group[0]]
    while frontier:
        for nxt in neighbours[frontier.pop()] & chosen:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen == chosen


def _overlap(a: Window, b: Window) -> bool:
    return a.start < b.end and b.start < a.end


# --- the read side --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadSide:
    """What other systems see: outbox rows by type, and the members read model against the
    floor the service day shows."""

    sync_messages: int
    hold_confirmed_messages: int
    drift_messages: int
    members_rows: int
    #: (booking, table) pairs assigned according to the service day.
    assigned_at_close: int
    #: Of those, the pairs without a member row carrying an assignment id.
    members_with_empty_id: int


def audit_read_side(service: AssignmentService, day: DayView) -> ReadSide:
    """Catch the projections up, then count what they show against ``day``."""
    service.catch_up_projections()
    outbox = {
        message_type: sum(by_status.values())
        for message_type, by_status in outbox_counts(service.read_models).items()
    }
    assigned = missing = 0
    for booking in day.bookings:
        if not booking.table_ids:
            continue
        members = service.members(day.restaurant_id, booking.booking_id)
        visible = {m.table_id for m in members if m.assignment_id}
        assigned += len(booking.table_ids)
        missing += len(set(booking.table_ids) - visible)
    return ReadSide(
        sync_messages=outbox.get(SYNC, 0),
        hold_confirmed_messages=outbox.get(HOLD_CONFIRMED, 0),
        drift_messages=outbox.get(POLICY_DRIFT, 0),
        members_rows=len(all_members(service.read_models)),
        assigned_at_close=assigned,
        members_with_empty_id=missing,
    )


# --- the entry point ------------------------------------------------------------------------


def run_demo(
    db_path: Path | str = DEFAULT_DB_PATH,
    seed: int = DEFAULT_SEED,
    *,
    overwrite: bool = False,
    config: DemoConfig | None = None,
) -> DemoReport:
    """Simulate one service day into a fresh SQLite event store and report what happened."""
    config = config or DemoConfig()
    path = Path(db_path)
    prepare_database(path, overwrite=overwrite)
    started = wall.perf_counter()
    clock = ManualClock(datetime.combine(SERVICE_DATE, time(7, 0), tzinfo=UTC))
    service = AssignmentService(Settings(persistence="sqlite", sqlite_path=path), clock=clock)
    try:
        day = _ServiceDay(service, clock, seed)
        day.setup(config)
        day.run(until=day.local(23, 0))
        day.sweep()
        day.scan()
        final = service.get_day(RESTAURANT_ID, SERVICE_DATE)
        read_side = audit_read_side(service, final)
    finally:
        service.close()
    tally = day.tally
    status = Counter(view.status for view in final.bookings)
    return DemoReport(
        seed=seed,
        restaurant_id=RESTAURANT_ID,
        service_date=SERVICE_DATE,
        zones=len(day.zone_rank),
        tables=len(day.tables),
        bookings=len(final.bookings),
        walk_ins=sum(1 for view in final.bookings if view.booking_id.startswith("walk-in")),
        commands=tally.commands,
        succeeded=tally.succeeded,
        rejected=sum(tally.rejected.values()),
        rejected_by_code=dict(sorted(tally.rejected.items())),
        drift_by_kind=dict(sorted(tally.drift.items())),
        holds_placed=tally.holds_placed,
        holds_replaced=tally.holds_replaced,
        holds_confirmed=tally.holds_confirmed,
        holds_released=tally.holds_released,
        holds_expired=tally.holds_expired,
        direct_assignments=tally.direct_assignments,
        moves=tally.moves,
        unassigns=tally.unassigns,
        replays=tally.replays,
        cancellations=tally.cancellations,
        turned_away=tally.turned_away,
        no_shows=tally.no_shows,
        completions=tally.completions,
        layout_changes=tally.layout_changes,
        unseated=status.get("pending", 0),
        final_status=dict(sorted(status.items())),
        double_booking_scans=tally.scans,
        double_bookings=len(tally.double_bookings),
        seated_by_source=dict(sorted(tally.seated_by.items())),
        auto_assign=tally.auto.report(),
        table_set_changing_commands=tally.table_set_changes,
        results_with_empty_id=tally.results_with_empty_id,
        sync_messages=read_side.sync_messages,
        hold_confirmed_messages=read_side.hold_confirmed_messages,
        drift_messages=read_side.drift_messages,
        members_rows=read_side.members_rows,
        assigned_at_close=read_side.assigned_at_close,
        members_with_empty_id=read_side.members_with_empty_id,
        seconds=round(wall.perf_counter() - started, 3),
    )
