"""The manager's mid-service changes: the layout and the policy change while holds and quotes
are open, so their confirms drift."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from seatledger.application.commands import (
    ChangePolicy,
    Command,
    DefineTable,
    LinkTables,
    UnlinkTables,
)
from seatledger.application.demo.config import MANAGER, RESTAURANT_ID
from seatledger.application.demo.floor import Hold
from seatledger.application.demo.simulation import Simulation
from seatledger.domain.errors import SeatLedgerError

C = TypeVar("C", bound=Command)


@dataclass
class _Incident:
    """A manager's change, due at a time, fired once the eligible open holds are enough to
    make it a drift test (after ``patience``, any one of them will do)."""

    due: datetime
    fire: Callable[[list[Hold]], None]
    eligible: Callable[[Hold], bool] = lambda _hold: True
    enough: Callable[[list[Hold]], bool] = bool
    patience: timedelta = timedelta(minutes=30)
    done: bool = False


class Manager:
    """Three changes in the day: two tables pulled apart at lunch (and joined again later),
    an extra chair at a held table, five more minutes of turnover at dinner."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.floor = sim.floor
        self.incidents: list[_Incident] = []

    def plan(self) -> None:
        sim = self.sim
        self.incidents = [
            _Incident(
                due=sim.local(12, 30),
                fire=self.unlink,
                eligible=lambda h: bool(self.floor.edges_among(h.tables)),
            ),
            _Incident(due=sim.local(18, 15), fire=self.extra_chair),
            _Incident(
                due=sim.local(19, 0),
                fire=self.longer_turnover,
                enough=self.both_auto_outcomes,
                patience=timedelta(minutes=90),
            ),
        ]

    def both_auto_outcomes(self, holds: list[Hold]) -> bool:
        """Open quotes whose auto-assign will retry a drift and one whose will not: a policy
        change now shows auto-assign recovering, and failing."""
        parties = self.sim.parties
        quoted = [parties[h.booking_id] for h in holds if parties[h.booking_id].quote is h]
        return {party.retry_on_drift is not False for party in quoted} == {True, False}

    def check(self) -> None:
        """After every step: fire each due change once its open holds are enough."""
        now = self.sim.now()
        for incident in self.incidents:
            if incident.done or now < incident.due:
                continue
            open_holds = [
                h
                for h in self.floor.holds.values()
                if h.confirm_at is not None
                and now < h.confirm_at < h.expires_at
                and incident.eligible(h)
            ]
            late = now - incident.due > incident.patience
            if open_holds and (late or incident.enough(open_holds)):
                incident.done = True  # one attempt: a rejected change is not retried
                incident.fire(sorted(open_holds, key=lambda h: h.hold_id))

    def layout_change(self, call: Callable[[C], object], command: C) -> bool:
        outcome = self.sim.send(call, command)
        if isinstance(outcome, SeatLedgerError):
            return False
        self.sim.tally.layout_changes += 1
        return True

    def unlink(self, holds: list[Hold]) -> None:
        """Staff pull two joined tables apart while a host holds them together."""
        sim = self.sim
        target = sim.rng.choice(holds)
        pair = sim.rng.choice(self.floor.edges_among(target.tables))
        command = UnlinkTables(
            restaurant_id=RESTAURANT_ID,
            edges=[pair],
            command_id=sim.cid("unlink"),
            actor_id=MANAGER,
            actor_role="manager",
        )
        if not self.layout_change(sim.service.unlink_tables, command):
            return
        self.floor.edges.discard(pair)
        self.floor.recompute_combos()
        sim.after(90 * 60, lambda: self.relink(pair))

    def relink(self, pair: tuple[str, str]) -> None:
        """The tables are lined up again before dinner."""
        sim = self.sim
        command = LinkTables(
            restaurant_id=RESTAURANT_ID,
            edges=[pair],
            command_id=sim.cid("link"),
            actor_id=MANAGER,
            actor_role="manager",
        )
        if self.layout_change(sim.service.link_tables, command):
            self.floor.edges.add(pair)
            self.floor.recompute_combos()

    def extra_chair(self, holds: list[Hold]) -> None:
        """An extra chair goes to a held table: its capacity changes under the hold."""
        sim = self.sim
        target = sim.rng.choice(holds)
        table = self.floor.tables[sim.rng.choice(target.tables)]
        changed = table.model_copy(update={"capacity": table.capacity + 1, "label": "extra chair"})
        command = DefineTable(
            restaurant_id=RESTAURANT_ID,
            table=changed,
            command_id=sim.cid("table"),
            actor_id=MANAGER,
            actor_role="manager",
        )
        if not self.layout_change(sim.service.define_table, command):
            return
        self.floor.tables[changed.table_id] = changed

    def longer_turnover(self, holds: list[Hold]) -> None:
        """The manager adds five minutes of turnover after every party, mid-service: new
        bookings get longer windows, and every hold placed before it drifts."""
        sim = self.sim
        policy = self.floor.policy.model_copy(
            update={"post_buffer_minutes": self.floor.policy.post_buffer_minutes + 5}
        )
        command = ChangePolicy(
            restaurant_id=RESTAURANT_ID,
            policy=policy,
            command_id=sim.cid("policy"),
            actor_id=MANAGER,
            actor_role="manager",
        )
        if self.layout_change(sim.service.change_policy, command):
            self.floor.policy = policy
