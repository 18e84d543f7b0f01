"""What the demo reports: the :class:`DemoReport` model, and the tallies the simulation keeps
while the day runs, from which (with the floor at close and the read side) it is built."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from seatledger.application.demo.checks import ReadSide
from seatledger.application.results import DayView


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


@dataclass
class AutoTally:
    """Auto-assign's outcomes as the day runs (see :class:`AutoAssignReport`)."""

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
class Tally:
    """Everything the simulation counts as the day runs (see :class:`DemoReport`)."""

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
    auto: AutoTally = field(default_factory=AutoTally)

    def report(
        self,
        *,
        seed: int,
        zones: int,
        tables: int,
        final: DayView,
        read_side: ReadSide,
        seconds: float,
    ) -> DemoReport:
        """The day's report: these counts, the floor ``final`` shows at close, the read side."""
        status = Counter(view.status for view in final.bookings)
        return DemoReport(
            seed=seed,
            restaurant_id=final.restaurant_id,
            service_date=final.service_date,
            zones=zones,
            tables=tables,
            bookings=len(final.bookings),
            walk_ins=sum(1 for view in final.bookings if view.booking_id.startswith("walk-in")),
            commands=self.commands,
            succeeded=self.succeeded,
            rejected=sum(self.rejected.values()),
            rejected_by_code=dict(sorted(self.rejected.items())),
            drift_by_kind=dict(sorted(self.drift.items())),
            holds_placed=self.holds_placed,
            holds_replaced=self.holds_replaced,
            holds_confirmed=self.holds_confirmed,
            holds_released=self.holds_released,
            holds_expired=self.holds_expired,
            direct_assignments=self.direct_assignments,
            moves=self.moves,
            unassigns=self.unassigns,
            replays=self.replays,
            cancellations=self.cancellations,
            turned_away=self.turned_away,
            no_shows=self.no_shows,
            completions=self.completions,
            layout_changes=self.layout_changes,
            unseated=status.get("pending", 0),
            final_status=dict(sorted(status.items())),
            double_booking_scans=self.scans,
            double_bookings=len(self.double_bookings),
            seated_by_source=dict(sorted(self.seated_by.items())),
            auto_assign=self.auto.report(),
            table_set_changing_commands=self.table_set_changes,
            results_with_empty_id=self.results_with_empty_id,
            sync_messages=read_side.sync_messages,
            hold_confirmed_messages=read_side.hold_confirmed_messages,
            drift_messages=read_side.drift_messages,
            members_rows=read_side.members_rows,
            assigned_at_close=read_side.assigned_at_close,
            members_with_empty_id=read_side.members_with_empty_id,
            seconds=seconds,
        )
