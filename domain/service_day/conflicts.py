"""What blocks a table set on a service day: other bookings' assignments and live holds,
and the allocation check every placement and assignment runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from seatledger.domain.allocation import Selection, check_selection
from seatledger.domain.errors import (
    AllocationError,
    ErrorCode,
    HoldError,
)
from seatledger.domain.layout import FloorView
from seatledger.domain.planner import Blocker
from seatledger.domain.service_day.slots import Slot
from seatledger.domain.service_day.state import (
    BookingState,
    DayState,
    HoldState,
)
from seatledger.domain.values import Window, utc_instant


class DayConflicts(DayState):
    """Conflict queries over the day's bookings and holds, answered by the per-table
    interval indexes (:mod:`.slots`): the cost follows the tables asked about and the
    windows on them, not the size of the day."""

    def assignment_conflicts(
        self, window: Window, tables: tuple[str, ...], exclude_booking: str
    ) -> list[dict[str, Any]]:
        found: set[str] = set()
        for table_id in set(tables):
            slots = self.booking_slots.get(table_id)
            if slots is not None:
                found.update(
                    slot.ref
                    for slot in slots.overlapping(window.start, window.end)
                    if slot.ref != exclude_booking
                )
        wanted = set(tables)
        blocking = []
        for booking_id in sorted(found):
            other = self.bookings[booking_id]
            blocking.append(
                {
                    "booking_id": booking_id,
                    "tables": sorted(wanted.intersection(other.tables)),
                    "window": other.window.canonical(),
                }
            )
        return blocking

    def hold_conflicts(
        self, window: Window, tables: tuple[str, ...], exclude_booking: str, now: datetime
    ) -> list[dict[str, Any]]:
        found: set[str] = set()
        for table_id in set(tables):
            slots = self.hold_slots.get(table_id)
            if slots is not None:
                found.update(slot.ref for slot in slots.overlapping(window.start, window.end))
        wanted = set(tables)
        blocking = []
        for hold_id in sorted(found):
            hold = self.holds[hold_id]
            if hold.booking_id == exclude_booking or not hold.is_live(now):
                continue
            blocking.append(
                {
                    "hold_id": hold.hold_id,
                    "booking_id": hold.booking_id,
                    "tables": sorted(wanted.intersection(hold.tables)),
                    "window": hold.window.canonical(),
                    "expires_at": utc_instant(hold.expires_at),
                }
            )
        return blocking

    def blockers(self, window: Window, booking_id: str, now: datetime) -> dict[str, Blocker]:
        """Tables another booking uses in ``window``: its assignments first, then its live
        holds (a booking's own holds and tables never block it). Where several block one
        table, the one the day saw last names it."""
        blocked: dict[str, Blocker] = {}
        for table_id, slots in self.hold_slots.items():
            latest: HoldState | None = None
            latest_ordinal = -1
            for slot in slots.overlapping(window.start, window.end):
                hold = self.holds[slot.ref]
                newer = slot.ordinal > latest_ordinal
                if newer and hold.booking_id != booking_id and hold.is_live(now):
                    latest, latest_ordinal = hold, slot.ordinal
            if latest is not None:
                blocked[table_id] = Blocker("hold", latest.hold_id, latest.booking_id)
        for table_id, slots in self.booking_slots.items():
            seated: Slot | None = None
            for slot in slots.overlapping(window.start, window.end):
                if slot.ref != booking_id and (seated is None or slot.ordinal > seated.ordinal):
                    seated = slot
            if seated is not None:
                blocked[table_id] = Blocker("assignment", seated.ref, seated.ref)
        return blocked

    def _check_allocation(
        self,
        floor: FloorView,
        booking: BookingState,
        tables: tuple[str, ...],
        *,
        replace: bool,
        require_adjacency: bool,
        now: datetime,
    ) -> Selection:
        selection = check_selection(
            floor,
            party_size=booking.party_size,
            requested=tables,
            current=booking.tables,
            current_zone=booking.zone_id,
            replace=replace,
            require_adjacency=require_adjacency,
        )
        conflicts = self.assignment_conflicts(
            booking.window, selection.requested, booking.booking_id
        )
        if conflicts:
            raise AllocationError(
                ErrorCode.ASSIGNMENT_CONFLICT,
                f"table(s) {', '.join(sorted({t for c in conflicts for t in c['tables']}))} "
                f"are assigned to booking(s) "
                f"{', '.join(c['booking_id'] for c in conflicts)} in an overlapping window",
                details={"conflicts": conflicts, "window": booking.window.canonical()},
            )
        holds = self.hold_conflicts(booking.window, selection.requested, booking.booking_id, now)
        if holds:
            raise HoldError(
                ErrorCode.HOLD_CONFLICT,
                f"live hold(s) {', '.join(h['hold_id'] for h in holds)} of other bookings "
                "overlap on these tables",
                details={"holds": holds, "window": booking.window.canonical()},
            )
        return selection
