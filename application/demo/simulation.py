"""The simulation's engine: timed steps run in time order on a manual clock, and every service
command sent through the public API, counted, its rejection returned rather than raised.

The hosts (:mod:`.hosts`), auto-assign (:mod:`.auto`), the manager (:mod:`.incidents`) and the
bookings (:mod:`.plan`) act through one :class:`Simulation`; it also owns the actions they
share: closing a booking, the hold sweeper and the double-booking scan.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from seatledger.application.clock import ManualClock
from seatledger.application.commands import (
    CancelBooking,
    Command,
    CompleteBooking,
    CreateRestaurant,
    ExpireHolds,
    MarkNoShow,
)
from seatledger.application.demo.checks import find_double_bookings
from seatledger.application.demo.config import RESTAURANT_ID, SERVICE_DATE, TIMEZONE
from seatledger.application.demo.floor import FloorPicture, Party
from seatledger.application.demo.report import Tally
from seatledger.application.errors import InfrastructureError
from seatledger.application.results import AssignmentResult, AutoAssignResult
from seatledger.application.service import AssignmentService
from seatledger.domain.errors import (
    PolicyDriftError,
    PolicyRequoteFailedError,
    SeatLedgerError,
)

C = TypeVar("C", bound=Command)
R = TypeVar("R")


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    run: Callable[[], None] = field(compare=False)


class Simulation:
    """One restaurant's day as a queue of timed steps, run against the service in time order.

    Every random choice comes from one ``random.Random(seed)`` and every command id from a
    counter, so one seed always writes the same event log.
    """

    def __init__(self, service: AssignmentService, clock: ManualClock, seed: int) -> None:
        self.service = service
        self.clock = clock
        self.rng = random.Random(seed)
        self.tz = ZoneInfo(TIMEZONE)
        self.tally = Tally()
        self.parties: dict[str, Party] = {}
        self.floor = FloorPicture()
        self._queue: list[_Step] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)

    # --- time and steps ---

    def local(self, hh: int, mm: int, ss: int = 0) -> datetime:
        return datetime.combine(SERVICE_DATE, time(hh, mm, ss), tzinfo=self.tz).astimezone(UTC)

    def now(self) -> datetime:
        return self.clock.now()

    def at(self, moment: datetime, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Step(max(moment, self.now()), next(self._seq), run))

    def after(self, seconds: float, run: Callable[[], None]) -> None:
        self.at(self.now() + timedelta(seconds=seconds), run)

    def run(self, until: datetime, after_each: Callable[[], None]) -> None:
        while self._queue and self._queue[0].at <= until:
            step = heapq.heappop(self._queue)
            self.clock.set(step.at)
            step.run()
            after_each()

    # --- commands ---

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
        self.floor.set_tables(party, tables)

    # --- the shared actions ---

    def open_restaurant(self, floor: CreateRestaurant) -> None:
        """The manager sets the restaurant up at 07:30; the hosts learn its floor."""
        self.clock.set(self.local(7, 30))
        outcome = self.send(self.service.create_restaurant, floor)
        if isinstance(outcome, SeatLedgerError):
            raise outcome
        self.floor.load_layout(floor)

    def schedule_rounds(self) -> None:
        """A floor scan every half hour of service, the hold sweeper every quarter-hour."""
        for hh in range(12, 23):
            for mm in (0, 30):
                self.at(self.local(hh, mm), self.scan)
        for hh in range(11, 23):
            for mm in (0, 15, 30, 45):
                self.at(self.local(hh, mm, 30), self.sweep)

    def ready(self, party: Party) -> bool:
        return party.window is not None and not party.closed

    def close(self, party: Party, how: str) -> None:
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
        self.floor.drop_holds(party.booking_id)

    def no_table(self, party: Party, look_again: Callable[[], None]) -> None:
        """Nothing free: a walk-in is turned away, a booking waits and is looked at again."""
        if party.walk_in:
            self.tally.turned_away += 1
            self.close(party, "cancel")
        elif self.now() < party.start + timedelta(minutes=10):
            self.after(300, look_again)

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
            self.floor.holds.pop(hold_id, None)

    def scan(self) -> None:
        """Read the floor back and look for double bookings, independently of the domain."""
        day = self.service.get_day(RESTAURANT_ID, SERVICE_DATE)
        self.tally.scans += 1
        self.tally.double_bookings.update(find_double_bookings(day.bookings))
