"""The demo's checks, independent of the domain: double bookings read back from the floor,
and the read side (outbox, members) against what the demo saw."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from seatledger.application.results import BookingView, DayView
from seatledger.application.service import AssignmentService
from seatledger.projections.members import all_members
from seatledger.projections.outbox import HOLD_CONFIRMED, POLICY_DRIFT, SYNC, outbox_counts


def find_double_bookings(bookings: Iterable[BookingView]) -> list[tuple[str, str]]:
    """Pairs of distinct bookings sharing a table with overlapping half-open windows.

    Deliberately does not use the domain's overlap code: it is the check on that code.
    """
    by_table: dict[str, list[BookingView]] = {}
    for view in bookings:
        for table_id in view.table_ids:
            by_table.setdefault(table_id, []).append(view)
    pairs: set[tuple[str, str]] = set()
    for views in by_table.values():
        for a, b in itertools.combinations(views, 2):
            if a.booking_id == b.booking_id:
                continue
            if a.window.start < b.window.end and b.window.start < a.window.end:
                first, second = sorted((a.booking_id, b.booking_id))
                pairs.add((first, second))
    return sorted(pairs)


@dataclass(frozen=True)
class ReadSide:
    """What other systems see: outbox rows by type, and the members read model against the
    floor the service day shows."""

    sync_messages: int
    hold_confirmed_messages: int
    drift_messages: int
    members_rows: int
    #: (booking, table) pairs assigned according to the service day.
    assigned_at_close: int
    #: Of those, the pairs without a member row carrying an assignment id.
    members_with_empty_id: int


def audit_read_side(service: AssignmentService, day: DayView) -> ReadSide:
    """Catch the projections up, then count what they show against ``day``."""
    service.catch_up_projections()
    outbox = {
        message_type: sum(by_status.values())
        for message_type, by_status in outbox_counts(service.read_models).items()
    }
    assigned = missing = 0
    for booking in day.bookings:
        if not booking.table_ids:
            continue
        members = service.members(day.restaurant_id, booking.booking_id)
        visible = {m.table_id for m in members if m.assignment_id}
        assigned += len(booking.table_ids)
        missing += len(set(booking.table_ids) - visible)
    return ReadSide(
        sync_messages=outbox.get(SYNC, 0),
        hold_confirmed_messages=outbox.get(HOLD_CONFIRMED, 0),
        drift_messages=outbox.get(POLICY_DRIFT, 0),
        members_rows=len(all_members(service.read_models)),
        assigned_at_close=assigned,
        members_with_empty_id=missing,
    )
