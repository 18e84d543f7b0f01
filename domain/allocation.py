"""The structural allocation checks shared by holds, confirms and manual assignments.

They look at the floor and the resulting table set only; overlap with other bookings and holds
is checked by the service day that knows them (:mod:`seatledger.domain.service_day`).
Order (the first failure wins): TABLES_REQUIRED, TABLE_NOT_FOUND, TABLE_INACTIVE, ZONE_MISMATCH,
ZONE_LOCKED, TABLE_IMMUTABLE, ADJACENCY_INVALID, CAPACITY_INSUFFICIENT, SLACK_BUDGET_EXCEEDED.
"""

from __future__ import annotations

from dataclasses import dataclass

from seatledger.domain.errors import AllocationError, ErrorCode
from seatledger.domain.layout import FloorView
from seatledger.domain.values import sorted_unique


@dataclass(frozen=True)
class Selection:
    """What a command asks for, already collapsed and sorted."""

    requested: tuple[str, ...]
    resulting: tuple[str, ...]
    zone_id: str


def check_selection(
    floor: FloorView,
    *,
    party_size: int,
    requested: tuple[str, ...],
    current: tuple[str, ...],
    current_zone: str | None,
    replace: bool,
    require_adjacency: bool,
    check_active: bool = True,
) -> Selection:
    """Validate a selection and return the booking's resulting table set."""
    requested = sorted_unique(requested)
    if not requested:
        raise AllocationError(ErrorCode.TABLES_REQUIRED, "no tables were named")
    tables = floor.require_tables(requested)

    if check_active:
        inactive = [t.table_id for t in tables if not t.active]
        if inactive:
            raise AllocationError(
                ErrorCode.TABLE_INACTIVE,
                f"table(s) {', '.join(inactive)} are inactive",
                details={"tables": inactive},
            )

    zones = sorted_unique(t.zone_id for t in tables)
    if len(zones) > 1:
        raise AllocationError(
            ErrorCode.ZONE_MISMATCH,
            f"the selection spans zones {', '.join(zones)}",
            details={"zones": list(zones), "tables": {t.table_id: t.zone_id for t in tables}},
        )
    zone_id = zones[0]
    if not replace and current and current_zone is not None and current_zone != zone_id:
        raise AllocationError(
            ErrorCode.ZONE_LOCKED,
            f"the booking already sits in zone {current_zone}, not {zone_id}",
            details={
                "booking_zone": current_zone,
                "requested_zone": zone_id,
                "current_tables": list(current),
            },
        )

    resulting = requested if replace else sorted_unique((*current, *requested))
    result_tables = floor.require_tables(resulting)
    if len(result_tables) > 1:
        fixed = [t.table_id for t in result_tables if not t.movable]
        if fixed:
            raise AllocationError(
                ErrorCode.TABLE_IMMUTABLE,
                f"fixed table(s) {', '.join(fixed)} cannot be combined",
                details={"fixed_tables": fixed, "tables": list(resulting)},
            )
        if require_adjacency and not floor.is_connected(resulting):
            raise AllocationError(
                ErrorCode.ADJACENCY_INVALID,
                f"tables {', '.join(resulting)} are not connected",
                details={
                    "tables": list(resulting),
                    "edges": [list(e) for e in floor.edges_among(resulting)],
                },
            )

    capacity = sum(t.capacity for t in result_tables)
    if capacity < party_size:
        raise AllocationError(
            ErrorCode.CAPACITY_INSUFFICIENT,
            f"{capacity} seats for a party of {party_size}",
            details={"capacity": capacity, "party_size": party_size, "tables": list(resulting)},
        )
    slack = capacity - party_size
    if slack > floor.policy.slack_budget:
        raise AllocationError(
            ErrorCode.SLACK_BUDGET_EXCEEDED,
            f"{slack} empty seats exceed the slack budget of {floor.policy.slack_budget}",
            details={
                "slack": slack,
                "slack_budget": floor.policy.slack_budget,
                "capacity": capacity,
                "party_size": party_size,
                "tables": list(resulting),
            },
        )
    return Selection(requested=requested, resulting=resulting, zone_id=zone_id)
