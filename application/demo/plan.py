"""The day's guests: bookings for lunch and dinner as a booking platform admits them, walk-ins,
a coach party too large for any table, and requests after the kitchen's last seating. Each
booking is registered, planned 40 minutes ahead (auto-assign or a host), and then completed,
cancelled or marked a no-show."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, time, timedelta

from seatledger.application.commands import RegisterBooking
from seatledger.application.demo.auto import AutoSeating
from seatledger.application.demo.config import (
    AUTO_SHARE,
    HOSTS,
    LARGE_GROUP,
    LOAD_FACTOR,
    MAX_MEAL_SLOTS,
    PARTY_SIZES,
    PARTY_WEIGHTS,
    QUOTE_AHEAD_SHARE,
    RESTAURANT_ID,
    SERVICE_DATE,
    DemoConfig,
)
from seatledger.application.demo.floor import Party
from seatledger.application.demo.hosts import Hosts
from seatledger.application.demo.simulation import Simulation
from seatledger.domain.errors import SeatLedgerError


class Bookings:
    """Generates the guests from the seed and schedules what happens to each of them."""

    def __init__(self, sim: Simulation, hosts: Hosts, auto: AutoSeating) -> None:
        self.sim = sim
        self.hosts = hosts
        self.auto = auto

    def schedule(self, config: DemoConfig) -> None:
        sim, rng = self.sim, self.sim.rng
        services = (
            ("lunch", sim.local(12, 0), 11, config.lunch_bookings),
            ("dinner", sim.local(17, 0), 19, config.dinner_bookings),
        )
        for name, first, slots, count in services:
            load = [0.0] * (slots + MAX_MEAL_SLOTS)
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
            arrival = sim.local(12, 10) + timedelta(minutes=rng.randint(0, 120))
            if n >= config.walk_ins // 3:
                arrival = sim.local(17, 20) + timedelta(minutes=rng.randint(0, 220))
            self.book(f"walk-in-{n + 1:02d}", arrival, self.party_size(), walk_in=True)
        for n in range(config.large_groups):
            arrival = sim.local(19, 0) + timedelta(minutes=rng.randint(0, 90))
            self.book(f"walk-in-group-{n + 1:02d}", arrival, LARGE_GROUP, walk_in=True)
        for n in range(config.late_requests):
            asked = sim.local(20, 30) + timedelta(minutes=rng.randint(0, 60))
            sim.at(asked, functools.partial(self.late_request, n))

    def party_size(self) -> int:
        return self.sim.rng.choices(PARTY_SIZES, weights=PARTY_WEIGHTS)[0]

    def admit(self, first: datetime, load: list[float], size: int) -> datetime | None:
        """The booking platform offers only quarter-hours with room (a rough seat count),
        so the floor is busy but not hopelessly overbooked."""
        need = 1.0 if size <= 4 else 2.0
        span = 4 if size <= 2 else 5 if size <= 4 else 6
        slots = len(load) - MAX_MEAL_SLOTS
        cap = LOAD_FACTOR * sum(1 for t in self.sim.floor.tables.values() if t.active)
        open_slots = [i for i in range(slots) if max(load[i : i + span]) + need <= cap]
        if not open_slots:
            return None
        slot = self.sim.rng.choice(open_slots)
        for i in range(slot, slot + span):
            load[i] += need
        return first + timedelta(minutes=15 * slot)

    def book(self, booking_id: str, start: datetime, size: int, *, walk_in: bool = False) -> None:
        sim, rng = self.sim, self.sim.rng
        if walk_in:
            registered = start
        else:
            earliest = sim.local(8, 0)
            registered = max(earliest, start - timedelta(minutes=rng.randint(60, 600)))
            registered += timedelta(seconds=rng.randint(0, 59))
        party = Party(booking_id, size, start, walk_in=walk_in)
        party.host = rng.choice(HOSTS)
        sim.parties[booking_id] = party
        sim.at(registered, lambda: self.register(party))
        roll = rng.random()
        if walk_in:
            by_hand = size <= PARTY_SIZES[-1] and rng.random() >= AUTO_SHARE
            seat: Callable[[Party], None] = self.hosts.seat_directly if by_hand else self.auto.auto
            sim.at(registered + timedelta(seconds=30), lambda: seat(party))
            return
        # hosts plan each quarter-hour's bookings in one go, 40 minutes ahead
        planning = start - timedelta(minutes=40) + timedelta(seconds=rng.randint(0, 300))
        sim.at(max(planning, registered + timedelta(minutes=1)), lambda: self.plan(party))
        if roll < 0.08:
            span = max(60, int((start - registered).total_seconds()))
            sim.at(
                registered + timedelta(seconds=rng.randint(30, span)),
                lambda: sim.close(party, "cancel"),
            )
        elif roll < 0.13:
            sim.at(start + timedelta(minutes=15), lambda: sim.close(party, "no_show"))

    def register(self, party: Party) -> None:
        sim = self.sim
        local = party.start.astimezone(sim.tz)
        outcome = sim.send(
            sim.service.register_booking,
            RegisterBooking(
                restaurant_id=RESTAURANT_ID,
                booking_id=party.booking_id,
                party_size=party.party_size,
                service_date=SERVICE_DATE,
                start_time=local.time().replace(tzinfo=None),
                command_id=sim.cid("register"),
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
        sim = self.sim
        sim.send(
            sim.service.register_booking,
            RegisterBooking(
                restaurant_id=RESTAURANT_ID,
                booking_id=f"late-{n + 1:02d}",
                party_size=2,
                service_date=SERVICE_DATE,
                start_time=time(21, 57),
                command_id=sim.cid("register"),
                actor_id=HOSTS[n % len(HOSTS)],
            ),
        )

    def maybe_complete(self, party: Party) -> None:
        """Most seated parties are closed when they leave; hosts forget some."""
        sim = self.sim
        assert party.window is not None
        if sim.rng.random() < 0.65:
            leaves = party.window.end - timedelta(minutes=5)
            sim.at(leaves, lambda: sim.close(party, "complete") if party.tables else None)

    def plan(self, party: Party) -> None:
        """A booking is planned 40 minutes ahead: mostly by auto-assign (most of those are
        quoted ahead), else a host picks tables: usually hold then confirm, else seat directly."""
        sim = self.sim
        if not sim.ready(party) or party.tables:
            return
        roll = sim.rng.random()
        if roll < AUTO_SHARE * QUOTE_AHEAD_SHARE:
            self.auto.quote_ahead(party)
        elif roll < AUTO_SHARE:
            self.auto.auto(party)
        else:
            self.hosts.seat(party, direct=sim.rng.random() < 0.35)
