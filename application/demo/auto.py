"""Parties seated by ``auto_assign``, many of them quoted ahead (a 15-minute hold) and
confirmed later. A manager's change in between makes the quote drift: auto-assign recovers by
re-quoting, except on terminals with drift retry switched off."""

from __future__ import annotations

from datetime import timedelta

from seatledger.application.commands import AutoAssign, QuoteBooking
from seatledger.application.demo.config import (
    NO_RETRY_SHARE,
    QUOTE_TTL_SECONDS,
    RESTAURANT_ID,
    SERVICE_DATE,
)
from seatledger.application.demo.floor import Hold, Party
from seatledger.application.demo.hosts import Hosts
from seatledger.application.demo.simulation import Simulation
from seatledger.application.results import AutoAssignResult
from seatledger.domain.errors import SeatLedgerError


class AutoSeating:
    """The platform's automated seating; seated parties are the hosts' again."""

    def __init__(self, sim: Simulation, hosts: Hosts) -> None:
        self.sim = sim
        self.hosts = hosts
        self.tally = sim.tally.auto

    def quote_ahead(self, party: Party) -> None:
        """The platform quotes the booking now (a 15-minute hold) and auto-assigns it later,
        usually before the hold lapses; a manager's change in between makes it drift."""
        sim = self.sim
        if sim.rng.random() < NO_RETRY_SHARE:
            party.retry_on_drift = False
        outcome = sim.send(
            sim.service.quote,
            QuoteBooking(
                restaurant_id=RESTAURANT_ID,
                booking_id=party.booking_id,
                ttl_seconds=QUOTE_TTL_SECONDS,
                command_id=sim.cid("quote"),
                actor_id=party.host,
            ),
        )
        if sim.rng.random() < 0.1:  # nobody gets to it in time: the quote lapses
            delay = sim.rng.randint(QUOTE_TTL_SECONDS + 30, QUOTE_TTL_SECONDS + 300)
        else:
            delay = sim.rng.randint(120, QUOTE_TTL_SECONDS - 60)
        if not isinstance(outcome, SeatLedgerError) and outcome.hold is not None:
            self.tally.early_quotes += 1
            held = outcome.hold
            party.quote = Hold(
                held.hold_id,
                party.booking_id,
                tuple(held.table_ids),
                held.window,
                held.expires_at,
                confirm_at=sim.now() + timedelta(seconds=delay),
            )
            sim.floor.holds[held.hold_id] = party.quote
        sim.after(delay, lambda: self.auto(party))

    def auto(self, party: Party) -> None:
        """Auto-assign: the service confirms the party's live quote, or quotes and confirms;
        on drift it re-quotes unless the terminal switched retry off."""
        sim = self.sim
        if not sim.ready(party) or party.tables:
            return
        command = AutoAssign(
            restaurant_id=RESTAURANT_ID,
            booking_id=party.booking_id,
            retry_on_drift=party.retry_on_drift,
            command_id=sim.cid("auto"),
            actor_id=party.host,
        )
        outcome = self.auto_assign(command)
        if party.quote is not None:  # confirmed, released or lapsed: it blocks nothing now
            sim.floor.settle(party.quote)
            party.quote = None
        if isinstance(outcome, SeatLedgerError):
            party.retry_on_drift = None  # the host tries again, with the usual terminal
            party.attempts += 1
            if party.attempts <= 4:
                sim.after(60, lambda: self.auto(party))
        elif outcome.outcome == "no_candidate":
            sim.no_table(party, lambda: self.auto(party))
        elif outcome.outcome == "assigned":
            self.hosts.seated(party)
            if sim.rng.random() < 0.06:  # timeout on the reply: the very same command again
                sim.after(2, lambda: self.resend(command))

    def resend(self, command: AutoAssign) -> None:
        """The reply timed out: the very same command again."""
        self.auto_assign(command)

    def auto_assign(self, command: AutoAssign) -> AutoAssignResult | SeatLedgerError:
        """One auto-assign, tallied by outcome. After a failure or no candidate the booking
        must be left without a live hold (docs/domain.md §9 and §15): read the day back to
        check."""
        sim, auto = self.sim, self.tally
        auto.attempted += 1
        outcome = sim.send(sim.service.auto_assign, command)
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
                sim.tally.drift[str(outcome.drift_kind)] += 1
            return outcome
        day = sim.service.get_day(RESTAURANT_ID, SERVICE_DATE)
        auto.holds_left_after_failure += sum(
            1 for h in day.holds if h.booking_id == command.booking_id and h.status == "live"
        )
        return outcome
