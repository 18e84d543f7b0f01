"""History invariants, checked at every event of the replay, not only at the end.

The service days and floor layouts are replayed through the domain's own ``mutate``, so the
state each check sees is the state the domain had. For every event that changes a booking's
table set the checker asks, with the floor as the log stood when the event was stored:

* ``double_booking``: no table is in two overlapping windows of one service day, at any moment;
* ``change_inconsistent`` / ``window_mismatch``: the change follows from the booking's tables
  before it (before + added - removed) and carries the booking's registered window;
* ``unknown_table`` / ``inactive_table``: added tables exist on the floor and are active;
* ``zone``: the resulting table set lies in one zone, the zone the change names;
* ``immovable``: a combination of several tables holds only movable tables;
* ``adjacency``: a confirmed hold placed with adjacency required is connected;
* ``hold_unknown`` / ``hold_booking_mismatch`` / ``hold_not_live`` / ``hold_expired``: every
  confirmed hold existed, was the booking's, was live and unexpired at its confirm;
* ``unreplayable``: the event cannot be applied at all (out of sequence, unknown booking...).

"One sync per table-set change" is checked against the live outbox (:mod:`.compare`).
A manual assignment does not record whether adjacency was required of it, so adjacency is
checked for confirmed holds only. Overlaps are looked for inside one service day: days do
not overlap by construction (docs/domain.md §3).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from uuid import UUID

from seatledger.application.audit.report import InvariantReport, Violation
from seatledger.domain.aggregate import Aggregate, DomainEvent
from seatledger.domain.layout import FloorLayout, FloorView, layout_id
from seatledger.domain.service_day import HoldConfirmed, ServiceDay, TableChange
from seatledger.domain.service_day.events import DAY_EVENTS
from seatledger.domain.values import Window, utc_instant
from seatledger.projections.projection import table_change

#: The topics whose events the checker needs decoded.
CHECKED_TOPICS: frozenset[str] = frozenset(
    event.TOPIC for event in (*DAY_EVENTS, *FloorLayout.EVENTS)
)


_layout_id = functools.lru_cache(maxsize=4096)(layout_id)


@dataclass
class HistoryChecker:
    """Feed it every day and layout event in log order (:meth:`check`)."""

    limit: int = 50
    events_checked: int = 0
    count: int = 0
    first: list[Violation] = field(default_factory=list)
    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    #: day id -> table -> booking -> window, for the bookings that hold the table now
    occupancy: dict[UUID, dict[str, dict[str, Window]]] = field(default_factory=dict)
    #: (day id, booking) -> the tables the booking holds now
    seated: dict[tuple[UUID, str], tuple[str, ...]] = field(default_factory=dict)
    _views: dict[UUID, FloorView] = field(default_factory=dict)
    _at: tuple[int, DomainEvent, Aggregate | None] = field(init=False)
    _reporting: bool = field(init=False, default=True)

    def report(self) -> InvariantReport:
        return InvariantReport(
            events_checked=self.events_checked, violations=self.count, first=list(self.first)
        )

    def check(self, position: int, event: DomainEvent, *, report: bool = True) -> None:
        """Apply the event, checking it first; ``report=False``: apply it, and check it
        silently (neither counted nor reported), as a replica of an event another checker
        reports (:mod:`.parallel` gives every shard the floor layouts)."""
        self._reporting = report
        self.events_checked += report
        aggregate = self.aggregates.get(event.originator_id)
        self._at = (position, event, aggregate)
        change = table_change(event)
        if change is not None and isinstance(aggregate, ServiceDay):
            self._before_change(aggregate, event, change)
        try:
            result = event.mutate(aggregate)
        except Exception as exc:
            self._violate(
                "unreplayable",
                message=f"{type(event).__name__} cannot be applied: {type(exc).__name__}: {exc}",
            )
            return
        self.aggregates[event.originator_id] = result
        if isinstance(result, FloorLayout):
            self._views.pop(result.id, None)
        if change is not None and isinstance(result, ServiceDay):
            self._after_change(result, event, change)

    # --- before the change is applied: is it a change the domain could have made? ---

    def _before_change(self, day: ServiceDay, event: DomainEvent, change: TableChange) -> None:
        booking = day.bookings.get(change.booking_id)
        if booking is None:
            return  # mutate fails and says so
        ids = [change.booking_id]
        expected = (set(booking.tables) | set(change.added)) - set(change.removed)
        if expected != set(change.tables):
            self._violate(
                "change_inconsistent",
                ids,
                sorted(expected ^ set(change.tables)),
                f"tables {sorted(change.tables)} do not follow from {sorted(booking.tables)}"
                f" + {sorted(change.added)} - {sorted(change.removed)}",
            )
        if change.window != booking.window:
            self._violate(
                "window_mismatch",
                ids,
                list(change.tables),
                f"the change's window {change.window} is not the booking's {booking.window}",
            )
        if isinstance(event, HoldConfirmed):
            self._check_hold(day, event, change)
        if change.added:
            self._check_floor(day, event, change)

    def _check_hold(self, day: ServiceDay, event: HoldConfirmed, change: TableChange) -> None:
        hold = day.holds.get(event.hold_id)
        ids = [change.booking_id]
        tables = list(event.hold_tables)
        if hold is None:
            self._violate("hold_unknown", ids, tables, f"hold {event.hold_id} unknown")
            return
        if hold.booking_id != change.booking_id:
            self._violate(
                "hold_booking_mismatch",
                [change.booking_id, hold.booking_id],
                tables,
                f"hold {hold.hold_id} was placed for booking {hold.booking_id}",
            )
        if hold.status != "live":
            self._violate(
                "hold_not_live",
                ids,
                tables,
                f"hold {hold.hold_id} was {hold.status} when it was confirmed",
            )
        elif event.timestamp >= hold.expires_at:
            self._violate(
                "hold_expired",
                ids,
                tables,
                f"hold {hold.hold_id} expired at {utc_instant(hold.expires_at)}, "
                f"before its confirm at {utc_instant(event.timestamp)}",
            )

    def _check_floor(self, day: ServiceDay, event: DomainEvent, change: TableChange) -> None:
        floor = self._floor(day.restaurant_id)
        ids = [change.booking_id]
        if floor is None:
            self._violate(
                "unknown_table",
                ids,
                list(change.tables),
                f"restaurant {day.restaurant_id} has no floor",
            )
            return
        missing = sorted(t for t in change.tables if t not in floor.tables)
        if missing:
            self._violate("unknown_table", ids, missing, "tables not on the floor")
            return
        inactive = sorted(t for t in change.added if not floor.tables[t].active)
        if inactive:
            self._violate("inactive_table", ids, inactive, "inactive tables")
        zones = sorted({floor.tables[t].zone_id for t in change.tables})
        if len(zones) > 1 or (change.zone_id is not None and zones != [change.zone_id]):
            self._violate(
                "zone",
                ids,
                list(change.tables),
                f"tables in zone(s) {zones}, the change names zone {change.zone_id}",
            )
        if len(change.tables) > 1:
            fixed = sorted(t for t in change.tables if not floor.tables[t].movable)
            if fixed:
                self._violate(
                    "immovable",
                    ids,
                    fixed,
                    f"fixed table(s) combined in {sorted(change.tables)}",
                )
            hold = day.holds.get(event.hold_id) if isinstance(event, HoldConfirmed) else None
            if (
                hold is not None
                and hold.adjacency_required
                and not floor.is_connected(change.tables)
            ):
                self._violate(
                    "adjacency",
                    ids,
                    list(change.tables),
                    f"tables {sorted(change.tables)} are not connected",
                )

    def _floor(self, restaurant_id: str) -> FloorView | None:
        key = _layout_id(restaurant_id)
        view = self._views.get(key)
        if view is None:
            layout = self.aggregates.get(key)
            if not isinstance(layout, FloorLayout):
                return None
            view = self._views[key] = layout.view()
        return view

    # --- after the change: does any table sit in two overlapping windows? ---

    def _after_change(self, day: ServiceDay, event: DomainEvent, change: TableChange) -> None:
        tables = self.occupancy.setdefault(day.id, {})
        booking_id = change.booking_id
        for table_id in self.seated.pop((day.id, booking_id), ()):
            tables.get(table_id, {}).pop(booking_id, None)
        if change.tables:
            self.seated[(day.id, booking_id)] = change.tables
        for table_id in change.tables:
            others = tables.setdefault(table_id, {})
            others.pop(booking_id, None)
            clashes = [item for item in others.items() if item[1].overlaps(change.window)]
            for other_id, window in sorted(clashes):  # sorted as before, only the clashes
                self._violate(
                    "double_booking",
                    sorted((booking_id, other_id)),
                    [table_id],
                    f"table {table_id} is assigned to booking {booking_id} {change.window}"
                    f" and to booking {other_id} {window}",
                )
            others[booking_id] = change.window

    def _violate(
        self,
        kind: str,
        booking_ids: list[str] | None = None,
        table_ids: list[str] | None = None,
        message: str = "",
    ) -> None:
        """A violation at the event being checked (:meth:`check` sets it)."""
        if not self._reporting:
            return
        self.count += 1
        if len(self.first) >= self.limit:
            return
        position, event, aggregate = self._at
        restaurant_id = getattr(aggregate, "restaurant_id", None) or getattr(
            event, "restaurant_id", None
        )
        service_date = getattr(aggregate, "service_date", None) or getattr(
            event, "service_date", None
        )
        self.first.append(
            Violation(
                position=position,
                kind=kind,
                instant=utc_instant(event.timestamp),
                restaurant_id=restaurant_id,
                service_date=service_date.isoformat() if service_date is not None else None,
                booking_ids=booking_ids or [],
                table_ids=table_ids or [],
                message=message,
            )
        )
