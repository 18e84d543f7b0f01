"""The re-send contract as a property (issue 10): random command sequences through the public
API, every command of every kind re-sent at once and again at the end, after everything else
happened (layout and policy changes, drift, clock moves, sweeps).

* an accepted command re-sent, at once or later, answers as it did the first time (a replayed
  assignment result says ``replayed=True, changed=False``) and writes nothing;
* a rejected command wrote nothing (a drift rejection: its record and ledger entry), and
  re-sent at once, on the same state, it is rejected alike and writes nothing.

Runs on memory and SQLite (and PostgreSQL, with fewer examples: a fresh schema per example).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from psycopg import sql

from seatledger.application.clock import ManualClock
from seatledger.application.commands import (
    AssignTables,
    AutoAssign,
    CancelBooking,
    ChangePolicy,
    Command,
    ConfirmHold,
    DefineTable,
    ExpireHolds,
    ExtendHold,
    LinkTables,
    PlaceHold,
    QuoteBooking,
    RegisterBooking,
    ReleaseHold,
    UnassignTables,
    UnlinkTables,
)
from seatledger.application.results import (
    AssignmentResult,
    AutoAssignResult,
    HoldView,
    QuoteResult,
)
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.layout import Table
from seatledger.domain.policy import VenuePolicy
from tests.conftest import RUN_PREFIX, require_postgres
from tests.support import DAY, floor, position

START = datetime.fromisoformat("2026-11-24T17:00:00+00:00")
BOOKINGS = ("b0", "b1", "b2", "b3")
TABLES = ("M1", "M2", "M3", "M7", "P1", "P2")
EXAMPLES = {"memory": 30, "sqlite": 10, "postgres": 4}
#: Every sequence starts with these (registrations are among the random commands too).
REGISTERED: list[tuple[Any, ...]] = [
    ("register", "b0", 2, "19:00"),
    ("register", "b1", 4, "19:00"),
    ("register", "b2", 2, "19:30"),
]

Op = tuple[Any, ...]

ops = st.one_of(
    st.tuples(
        st.just("register"),
        st.sampled_from(BOOKINGS),
        st.sampled_from([2, 4]),
        st.sampled_from(["19:00", "19:30", "20:30"]),
    ),
    st.tuples(st.just("hold"), st.sampled_from(BOOKINGS), st.sampled_from(TABLES)),
    st.tuples(st.just("extend"), st.integers(0, 5), st.sampled_from([120, 600])),
    st.tuples(st.just("release"), st.integers(0, 5)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("quote"), st.sampled_from(BOOKINGS)),
    st.tuples(st.just("confirm"), st.integers(0, 5)),
    st.tuples(
        st.just("assign"),
        st.sampled_from(BOOKINGS),
        st.lists(st.sampled_from(TABLES), min_size=1, max_size=2),
    ),
    st.tuples(st.just("unassign"), st.sampled_from(BOOKINGS), st.booleans()),
    st.tuples(st.just("cancel"), st.sampled_from(BOOKINGS)),
    st.tuples(st.just("auto"), st.sampled_from(BOOKINGS), st.sampled_from([1, 2])),
    st.tuples(st.just("policy"), st.sampled_from([0, 10, 20])),
    st.tuples(st.just("table"), st.sampled_from(TABLES), st.booleans()),
    st.tuples(st.just("edge"), st.booleans()),
    st.tuples(st.just("tick"), st.sampled_from([30, 90, 400])),
)


@dataclass
class World:
    """What the sequence knows: holds it was given, and every command it sent."""

    tables: dict[str, Table]
    #: (hold id, booking id) of every hold a result named
    holds: list[tuple[str, str]] = field(default_factory=list)
    sent: list[tuple[Command, Any]] = field(default_factory=list)

    def hold(self, index: int) -> tuple[str, str] | None:
        return self.holds[index % len(self.holds)] if self.holds else None


def command_of(op: Op, world: World) -> Command | None:
    """The command of ``op`` (None: a clock move, or nothing to refer to yet)."""
    r1 = {"restaurant_id": "r1", "command_id": str(uuid.uuid4()), "actor_id": "host-1"}
    kind, *args = op
    if kind == "register":
        booking_id, party, start = args
        return RegisterBooking(
            **r1,
            booking_id=booking_id,
            party_size=party,
            service_date=DAY,
            start_time=time.fromisoformat(start),
        )
    if kind == "hold":
        return PlaceHold(**r1, booking_id=args[0], table_ids=[args[1]])
    if kind in ("extend", "release", "confirm"):
        known = world.hold(args[0])
        if known is None:
            return None
        hold_id, booking_id = known
        if kind == "extend":
            return ExtendHold(**r1, hold_id=hold_id, ttl_seconds=args[1])
        if kind == "release":
            return ReleaseHold(**r1, hold_id=hold_id)
        return ConfirmHold(**r1, booking_id=booking_id, hold_id=hold_id)
    if kind == "sweep":
        return ExpireHolds(**r1, service_date=DAY)
    if kind == "quote":
        return QuoteBooking(**r1, booking_id=args[0])
    if kind == "assign":
        return AssignTables(**r1, booking_id=args[0], table_ids=args[1])
    if kind == "unassign":
        return UnassignTables(**r1, booking_id=args[0], table_ids=None if args[1] else ["M1"])
    if kind == "cancel":
        return CancelBooking(**r1, booking_id=args[0])
    if kind == "auto":
        return AutoAssign(**r1, booking_id=args[0], max_attempts=args[1])
    if kind == "policy":
        return ChangePolicy(**r1, policy=VenuePolicy(post_buffer_minutes=args[0]))
    if kind == "table":  # retire a table, or bring it back
        table = world.tables[args[0]].model_copy(update={"active": args[1]})
        return DefineTable(**r1, table=table)
    if kind == "edge":
        edges = [("M1", "M2")]
        return LinkTables(**r1, edges=edges) if args[0] else UnlinkTables(**r1, edges=edges)
    raise AssertionError(kind)


def as_replay(answer: Any) -> Any:
    """The first answer as a re-send gets it."""
    if isinstance(answer, AssignmentResult):
        return answer.model_copy(update={"replayed": True, "changed": False})
    if isinstance(answer, AutoAssignResult) and answer.assignment is not None:
        return answer.model_copy(update={"assignment": as_replay(answer.assignment)})
    if isinstance(answer, SeatLedgerError):
        return answer.to_dict()
    return answer


def send(service: AssignmentService, command: Command) -> Any:
    try:
        return service.execute(command)
    except SeatLedgerError as err:
        return err


def send_once_then_again(service: AssignmentService, command: Command, world: World) -> None:
    before = position(service)
    first = send(service, command)
    wrote = position(service) - before
    if isinstance(first, SeatLedgerError):
        recorded = first.code is ErrorCode.POLICY_DRIFT
        assert wrote == 0 or recorded, (command, first, wrote)
    else:
        assert wrote >= 1, command  # its ledger entry at least
    middle = position(service)
    again = send(service, command)
    assert position(service) == middle, f"re-sent {command!r} wrote"
    if isinstance(first, SeatLedgerError):
        assert isinstance(again, SeatLedgerError), (command, first, again)
        assert again.code == first.code, (command, first, again)
    else:
        assert as_replay(again) == as_replay(first), command
        world.sent.append((command, first))
    if isinstance(first, HoldView):
        world.holds.append((first.hold_id, first.booking_id))
    if isinstance(first, QuoteResult) and first.hold is not None:
        world.holds.append((first.hold.hold_id, first.booking_id))


def run_sequence(service: AssignmentService, clock: ManualClock, sequence: list[Op]) -> None:
    service.create_restaurant(floor())
    world = World(tables={t.table_id: t for t in service.get_restaurant("r1").tables})
    for op in sequence:
        if op[0] == "tick":
            clock.set(clock.now() + timedelta(seconds=op[1]))
            continue
        command = command_of(op, world)
        if command is not None:
            send_once_then_again(service, command, world)
    # later: after everything else, every accepted command answers as it did
    clock.set(clock.now() + timedelta(hours=1))
    before = position(service)
    for command, first in world.sent:
        again = send(service, command)
        assert as_replay(again) == as_replay(first), command
    assert position(service) == before


@contextmanager
def fresh_service(backend: str, directory: Path) -> Iterator[tuple[AssignmentService, ManualClock]]:
    clock = ManualClock(START)
    schema = RUN_PREFIX + "prop_" + uuid.uuid4().hex[:8]
    if backend == "postgres":
        settings = Settings(
            persistence="postgres", postgres_schema=schema, projection_mode="in_process"
        )
    elif backend == "sqlite":
        settings = Settings(persistence="sqlite", sqlite_path=directory / f"{schema}.db")
    else:
        settings = Settings(persistence="memory")
    try:
        with AssignmentService(settings, clock=clock) as service:
            yield service, clock
    finally:
        if backend == "postgres":
            with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
                query = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(query.format(sql.Identifier(schema)))


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_every_command_re_sent_at_once_and_later_answers_alike_and_writes_nothing(
    backend: str,
) -> None:
    if backend == "postgres":
        require_postgres()

    @hypothesis_settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(sequence=st.lists(ops, min_size=6, max_size=20))
    def check(sequence: list[Op]) -> None:
        with (
            tempfile.TemporaryDirectory() as directory,
            fresh_service(backend, Path(directory)) as (service, clock),
        ):
            run_sequence(service, clock, [*REGISTERED, *sequence])

    check()
