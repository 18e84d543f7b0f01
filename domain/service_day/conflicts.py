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
from seatledger.domain.service_day.state import (
    BookingState,
    DayState,
)
from seatledger.domain.values import Window, utc_instant


class DayConflicts(DayState):
    """Conflict queries over the day's bookings and holds."""

    def assignment_conflicts(
        self, window: Window, tables: tuple[str, ...], exclude_booking: str
    ) -> list[dict[str, Any]]:
        wanted = set(tables)
        blocking = []
        for other in self.bookings.values():
            if other.booking_id == exclude_booking or not other.tables:
                continue
            shared = wanted.intersection(other.tables)
            if shared and other.window.overlaps(window):
                blocking.append(
                    {
                        "booking_id": other.booking_id,
                        "tables": sorted(shared),
                        "window": other.window.canonical(),
                    }
                )
        return sorted(blocking, key=lambda item: item["booking_id"])

    def hold_conflicts(
        self, window: Window, tables: tuple[str, ...], exclude_booking: str, now: datetime
    ) -> list[dict[str, Any]]:
        wanted = set(tables)
        blocking = []
        for hold in self.holds.values():
            if hold.booking_id == exclude_booking or not hold.is_live(now):
                continue
            shared = wanted.intersection(hold.tables)
            if shared and hold.window.overlaps(window):
                blocking.append(
                    {
                        "hold_id": hold.hold_id,
                        "booking_id": hold.booking_id,
                        "tables": sorted(shared),
                        "window": hold.window.canonical(),
                        "expires_at": utc_instant(hold.expires_at),
                    }
                )
        return sorted(blocking, key=lambda item: item["hold_id"])

    def blockers(self, window: Window, booking_id: str, now: datetime) -> dict[str, Blocker]:
        """Tables another booking uses in ``window``: its assignments first, then its live
        holds (a booking's own holds and tables never block it)."""
        blocked: dict[str, Blocker] = {}
        for hold in self.holds.values():
            if hold.booking_id != booking_id and hold.is_live(now) and hold.window.overlaps(window):
                for table_id in hold.tables:
                    blocked[table_id] = Blocker("hold", hold.hold_id, hold.booking_id)
        for other in self.bookings.values():
            if other.booking_id != booking_id and other.tables and other.window.overlaps(window):
                for table_id in other.tables:
                    blocked[table_id] = Blocker("assignment", other.booking_id, other.booking_id)
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
