"""Aggregate commands for ``DaySpec.when``: one short call per ``ServiceDay`` command.

The floor is ``sample_floor()`` (see seatledger.application.testing.day_facts); the day is
2026-11-24 in London (UTC+0), so a 19:00 booking for two has the window [19:00Z, 20:05Z).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from seatledger.application.testing import DayCommand
from seatledger.domain.policy import block_window
from seatledger.domain.service_day import ActorRole, ClosedStatus, HoldRules

RULES = HoldRules()
#: The spec's default instant: two hours before the usual 19:00 booking.
T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def at(hhmmss: str) -> datetime:
    """An instant on the spec's day, UTC."""
    return datetime.combine(T0.date(), time.fromisoformat(hhmmss), UTC)


def register(
    booking_id: str, party_size: int = 2, start: str = "19:00", service: str | None = None
) -> DayCommand:
    return lambda day, floor, stamp: day.register_booking(
        booking_id=booking_id,
        party_size=party_size,
        block=block_window(
            floor.policy, day.service_date, time.fromisoformat(start), party_size, service
        ),
        stamp=stamp,
    )


def place(
    booking_id: str,
    *tables: str,
    ttl_seconds: int | None = None,
    require_adjacency: bool | None = None,
    replaces_hold_id: str | None = None,
    rules: HoldRules = RULES,
) -> DayCommand:
    return lambda day, floor, stamp: day.place_hold(
        booking_id=booking_id,
        tables=tables,
        floor=floor,
        rules=rules,
        stamp=stamp,
        ttl_seconds=ttl_seconds,
        require_adjacency=require_adjacency,
        replaces_hold_id=replaces_hold_id,
    )


def extend(hold_id: str, ttl_seconds: int | None = None, role: ActorRole = "host") -> DayCommand:
    return lambda day, floor, stamp: day.extend_hold(
        hold_id=hold_id, rules=RULES, stamp=stamp, actor_role=role, ttl_seconds=ttl_seconds
    )


def release(hold_id: str, role: ActorRole = "host") -> DayCommand:
    return lambda day, floor, stamp: day.release_hold(hold_id=hold_id, stamp=stamp, actor_role=role)


def expire() -> DayCommand:
    return lambda day, floor, stamp: day.expire_holds(stamp=stamp)


def assign(
    booking_id: str,
    *tables: str,
    replace: bool = False,
    key: str | None = None,
    require_adjacency: bool | None = None,
) -> DayCommand:
    return lambda day, floor, stamp: day.assign_tables(
        booking_id=booking_id,
        tables=tables,
        floor=floor,
        stamp=stamp,
        idempotency_key=key,
        replace=replace,
        require_adjacency=require_adjacency,
    )


def unassign(booking_id: str, *tables: str) -> DayCommand:
    """The named tables, or all of them when none are named."""
    return lambda day, floor, stamp: day.unassign_tables(
        booking_id=booking_id, tables=tables or None, stamp=stamp
    )


def close(booking_id: str, status: ClosedStatus = "cancelled") -> DayCommand:
    return lambda day, floor, stamp: day.close_booking(
        booking_id=booking_id, status=status, stamp=stamp
    )
