"""The hosts seating parties by hand: they hold tables and confirm them, seat parties directly,
move and unseat them, re-send commands after "timeouts", let holds lapse and misread the
floor. They pick tables from their own picture of the floor, which can be wrong."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from seatledger.application.commands import (
    AssignTables,
    ConfirmHold,
    PlaceHold,
    ReleaseHold,
    UnassignTables,
)
from seatledger.application.demo.config import RESTAURANT_ID
from seatledger.application.demo.floor import Hold, Party
from seatledger.application.demo.simulation import Simulation
from seatledger.domain.errors import PolicyDriftError, SeatLedgerError


class Hosts:
    """The front of house's manual seating."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.floor = sim.floor
        self.tally = sim.tally

    def candidates(self, party: Party, *, free: bool = True) -> list[tuple[str, ...]]:
        return self.floor.candidates(party, self.sim.now(), free=free)

    def pick(self, options: list[tuple[str, ...]]) -> tuple[str, ...]:
        return self.sim.rng.choice(options[:3])

    def seat_directly(self, party: Party) -> None:
        self.seat(party, direct=True)

    def seat(self, party: Party, *, direct: bool) -> None:
        if not self.sim.ready(party) or party.tables:
            return
        free = self.candidates(party)
        if not free:
            self.sim.no_table(party, lambda: self.seat(party, direct=True))
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

    def misread(self, party: Party, *, direct: bool) -> None:
        """Now and then a host tries a table that is taken, or too small."""
        rng = self.sim.rng
        roll = rng.random()
        if roll < 0.07:
            taken = self.candidates(party, free=False)
            now = self.sim.now()
            held = [c for c in taken if self.floor.held_by_other(c, party, now)]
            if held and rng.random() < 0.5:
                taken = held
            if taken:
                tables = self.pick(taken)
                if direct:
                    self.assign(party, tables, retry=False)
                else:
                    self.hold(party, tables, retry=False)
        elif roll < 0.09 and party.party_size > 2:
            small = [t.table_id for t in self.floor.tables.values() if t.active and t.capacity == 2]
            self.assign(party, (rng.choice(small),), retry=False)

    def hold(
        self,
        party: Party,
        tables: Sequence[str],
        *,
        retry: bool = True,
        replaces: Hold | None = None,
        quick: bool = False,
    ) -> None:
        sim = self.sim
        assert party.window is not None
        command = PlaceHold(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            table_ids=list(tables),
            replaces_hold_id=None if replaces is None else replaces.hold_id,
            command_id=sim.cid("hold"),
            actor_id=party.host,
        )
        outcome = sim.send(sim.service.place_hold, command)
        if isinstance(outcome, SeatLedgerError):
            if retry:
                sim.after(20, lambda: self.seat(party, direct=False))
            return
        if sim.rng.random() < 0.05:  # the reply was lost: the host sends it again
            again = sim.send(sim.service.place_hold, command)
            assert isinstance(again, SeatLedgerError) or again.hold_id == outcome.hold_id
        self.tally.holds_placed += 1
        if replaces is not None:
            self.floor.settle(replaces)
            self.tally.holds_replaced += 1
        hold = Hold(
            outcome.hold_id,
            party.booking_id,
            tuple(outcome.table_ids),
            party.window,
            outcome.expires_at,
        )
        self.floor.holds[hold.hold_id] = hold
        if not retry:
            return
        rng = sim.rng
        roll = rng.random()
        if not quick and roll < 0.08:
            # the host is pulled away: the confirm comes after the hold expired
            delay = rng.randint(200, 420)
            sim.after(delay, lambda: self.confirm(party, hold))
            return
        delay = rng.randint(3, 15) if quick else rng.randint(5, 90)
        if not quick and roll < 0.12:
            # the guest hesitates: the host lets the tables go and tries again later
            sim.after(delay, lambda: self.release(party, hold, then_seat=True))
            return
        if not quick and roll < 0.24:
            alternatives = [c for c in self.candidates(party) if c != hold.tables]
            if alternatives:
                # the guest prefers another spot: a new hold replaces the first
                other = self.pick(alternatives)
                sim.after(delay // 2, lambda: self.rehold(party, hold, other))
                return
        hold.confirm_at = sim.now() + timedelta(seconds=delay)
        sim.after(delay, lambda: self.confirm(party, hold))

    def rehold(self, party: Party, old: Hold, tables: Sequence[str]) -> None:
        if not self.sim.ready(party) or party.tables or old.settled:
            return
        self.hold(party, tables, replaces=old, quick=True)

    def confirm(self, party: Party, hold: Hold) -> None:
        sim = self.sim
        if not sim.ready(party) or party.tables or hold.settled:
            return
        command_id = sim.cid("confirm")
        # half the terminals send their own idempotency key, the others let it be derived
        key = f"key-{command_id}" if sim.rng.random() < 0.5 else None
        command = ConfirmHold(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            hold_id=hold.hold_id,
            idempotency_key=key,
            command_id=command_id,
            actor_id=party.host,
        )
        outcome = sim.send(sim.service.confirm_hold, command)
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
                sim.sweep()
            self.floor.settle(hold)
            sim.after(30, lambda: self.seat(party, direct=False))
            return
        self.floor.settle(hold)
        self.seated(party)
        roll = sim.rng.random()
        if roll < 0.08:  # timeout on the reply: the very same command again
            sim.after(2, lambda: self.resend(command))
        elif roll < 0.14:  # another terminal confirms the same hold again
            again = command.model_copy(update={"command_id": sim.cid("confirm")})
            sim.after(4, lambda: self.resend(again))

    def resend(self, command: ConfirmHold | AssignTables) -> None:
        if isinstance(command, ConfirmHold):
            self.sim.send(self.sim.service.confirm_hold, command)
        else:
            self.sim.send(self.sim.service.assign_tables, command)

    def release(self, party: Party, hold: Hold, *, then_seat: bool = False) -> None:
        sim = self.sim
        outcome = sim.send(
            sim.service.release_hold,
            ReleaseHold(
                restaurant_id=RESTAURANT_ID,
                hold_id=hold.hold_id,
                command_id=sim.cid("release"),
                actor_id=party.host,
            ),
        )
        self.floor.settle(hold)
        if not isinstance(outcome, SeatLedgerError) and outcome.released:
            self.tally.holds_released += 1
        if then_seat:
            sim.after(60, lambda: self.seat(party, direct=False))

    def assign(
        self,
        party: Party,
        tables: Sequence[str],
        *,
        retry: bool = True,
        replace: bool = False,
    ) -> None:
        sim = self.sim
        command_id = sim.cid("move" if replace else "assign")
        key = f"key-{command_id}" if sim.rng.random() < 0.5 else None
        command = AssignTables(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            table_ids=list(tables),
            idempotency_key=key,
            replace=replace,
            command_id=command_id,
            actor_id=party.host,
        )
        outcome = sim.send(sim.service.assign_tables, command)
        if isinstance(outcome, SeatLedgerError):
            if retry:
                sim.after(20, lambda: self.seat(party, direct=True))
            return
        if replace:
            self.tally.moves += 1
        else:
            self.tally.direct_assignments += 1
        self.seated(party, moved=replace)
        roll = sim.rng.random()
        if roll < 0.08:  # timeout on the reply: the very same command again
            sim.after(3, lambda: self.resend(command))
        elif roll < 0.12 and key is not None:
            # a buggy terminal reuses the key for other tables: IDEMPOTENCY_MISMATCH
            others = [c for c in self.candidates(party) if c != party.tables]
            if others:
                wrong = command.model_copy(
                    update={"command_id": sim.cid("assign"), "table_ids": list(others[0])}
                )
                sim.after(5, lambda: self.resend(wrong))

    def seated(self, party: Party, *, moved: bool = False) -> None:
        """The party has tables (the simulation observed them): the guest may still ask to
        move, or the host may unseat it to reshuffle the floor."""
        if moved or party.walk_in:
            return
        sim = self.sim
        roll = sim.rng.random()
        until_start = max(60.0, (party.start - sim.now()).total_seconds())
        if roll < 0.08:
            sim.after(sim.rng.uniform(30, until_start), lambda: self.move(party))
        elif roll < 0.13:
            sim.after(sim.rng.uniform(30, until_start), lambda: self.unseat(party))

    def move(self, party: Party) -> None:
        """The guest asks for another spot: one command moves the party (replace=True)."""
        if not self.sim.ready(party) or not party.tables:
            return
        options = [c for c in self.candidates(party) if c != party.tables]
        if options:
            self.assign(party, self.pick(options), retry=False, replace=True)

    def unseat(self, party: Party) -> None:
        """The host frees a party's tables to reshuffle the floor, and seats it again later."""
        sim = self.sim
        if not sim.ready(party) or not party.tables:
            return
        outcome = sim.send(
            sim.service.unassign_tables,
            UnassignTables(
                restaurant_id=RESTAURANT_ID,
                booking_id=party.booking_id,
                command_id=sim.cid("unassign"),
                actor_id=party.host,
            ),
        )
        if isinstance(outcome, SeatLedgerError):
            return
        self.tally.unassigns += 1
        party.attempts = 0
        sim.after(300, lambda: self.seat(party, direct=sim.rng.random() < 0.5))
