"""Holds on a service day: place, extend, release and expire, with the TTL clamp, the
rate limit and who may act on a hold (docs/domain.md §5).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from seatledger.domain.aggregate import Stamp
from seatledger.domain.errors import (
    ErrorCode,
    HoldError,
)
from seatledger.domain.layout import FloorView
from seatledger.domain.service_day.confirm import check_hold_usable
from seatledger.domain.service_day.events import (
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
)
from seatledger.domain.service_day.idempotency import DayIdempotency
from seatledger.domain.service_day.state import (
    ActorRole,
    HoldRules,
    HoldSource,
    HoldState,
    ReleaseReason,
    derive_hold_id,
)
from seatledger.domain.values import utc_instant


class DayHolds(DayIdempotency):
    """The hold commands of a service day."""

    def holds_of(self, booking_id: str) -> list[HoldState]:
        """The booking's holds, in the order they were placed."""
        return [self.holds[hold_id] for hold_id in self.holds_by_booking.get(booking_id, ())]

    def live_auto_hold(self, booking_id: str, now: datetime) -> HoldState | None:
        """The booking's newest live hold placed by a quote, if any."""
        holds = [
            hold
            for hold in self.holds_of(booking_id)
            if hold.source == "auto" and hold.is_live(now)
        ]
        return max(holds, key=lambda hold: hold.placed_at, default=None)

    def place_hold(
        self,
        *,
        booking_id: str,
        tables: tuple[str, ...],
        floor: FloorView,
        rules: HoldRules,
        stamp: Stamp,
        ttl_seconds: int | None = None,
        require_adjacency: bool | None = None,
        replaces_hold_id: str | None = None,
        source: HoldSource = "manual",
        relaxations: tuple[str, ...] = (),
    ) -> HoldState:
        hold_id = derive_hold_id(self.id, stamp.command_id)
        if hold_id in self.holds:
            return self.holds[hold_id]
        booking = self._open_booking(booking_id)

        replaced: HoldState | None = None
        if replaces_hold_id is not None:
            replaced = self.hold(replaces_hold_id)
            if replaced.booking_id != booking_id:
                raise HoldError(
                    ErrorCode.HOLD_BOOKING_MISMATCH,
                    f"hold {replaces_hold_id} belongs to another booking",
                    details={"hold_id": replaces_hold_id, "booking_id": booking_id},
                )

        self._check_rate_limit(booking_id, stamp.actor_id, rules, stamp.now)
        required = (
            floor.policy.requires_adjacency(booking.party_size)
            if require_adjacency is None
            else require_adjacency
        )
        selection = self._check_allocation(
            floor, booking, tables, replace=False, require_adjacency=required, now=stamp.now
        )
        snapshot = floor.snapshot(selection.requested)
        self._trigger(
            HoldPlaced,
            stamp,
            hold_id=hold_id,
            booking_id=booking_id,
            tables=selection.requested,
            zone_id=selection.zone_id,
            window=booking.window,
            expires_at=stamp.now + rules.ttl(ttl_seconds),
            source=source,
            replaces_hold_id=replaces_hold_id,
            policy_version=snapshot.policy_version,
            zone_ids=snapshot.zone_ids,
            adjacency=snapshot.adjacency,
            table_facts=snapshot.tables,
            adjacency_required=required,
            relaxations=relaxations,
        )
        if replaced is not None and replaced.is_live(stamp.now):
            self._trigger(
                HoldReleased,
                stamp,
                hold_id=replaced.hold_id,
                booking_id=booking_id,
                reason="replaced",
            )
        return self.holds[hold_id]

    def extend_hold(
        self,
        *,
        hold_id: str,
        rules: HoldRules,
        stamp: Stamp,
        actor_role: ActorRole,
        ttl_seconds: int | None = None,
    ) -> tuple[HoldState, bool]:
        """Returns the hold and whether it was extended (an earlier expiry is a no-op)."""
        hold = self.hold(hold_id)
        if stamp.command_id in self.seen_commands:
            return hold, hold.extended_by == stamp.command_id
        self._check_hold_actor(hold, stamp.actor_id, actor_role, "extend")
        check_hold_usable(hold, stamp.now)
        expires_at = stamp.now + rules.ttl(ttl_seconds)
        if expires_at <= hold.expires_at:
            return hold, False
        self._trigger(
            HoldExtended,
            stamp,
            hold_id=hold_id,
            expires_at=expires_at,
            previous_expires_at=hold.expires_at,
        )
        return self.holds[hold_id], True

    def release_hold(
        self,
        *,
        hold_id: str,
        stamp: Stamp,
        actor_role: ActorRole,
        reason: ReleaseReason = "released",
    ) -> tuple[bool, str]:
        """Returns whether the hold was released, and its status otherwise."""
        hold = self.holds.get(hold_id)
        if hold is None:
            return False, "unknown"
        if hold.status != "live":
            if hold.status == "released" and hold.closed_by == stamp.command_id:
                return True, "released"  # this very command released it (a re-send)
            return False, hold.status
        if stamp.now >= hold.expires_at:
            return False, "expired"
        self._check_hold_actor(hold, stamp.actor_id, actor_role, "release")
        self._trigger(
            HoldReleased,
            stamp,
            hold_id=hold_id,
            booking_id=hold.booking_id,
            reason=reason,
        )
        return True, "released"

    def expire_holds(self, *, stamp: Stamp) -> list[str]:
        """The sweeper: record an expiry event for every hold past its expiry."""
        expired = sorted(
            hold_id for hold_id in self.live_hold_ids if stamp.now >= self.holds[hold_id].expires_at
        )
        for hold_id in expired:
            hold = self.holds[hold_id]
            self._trigger(
                HoldExpired,
                stamp,
                hold_id=hold_id,
                booking_id=hold.booking_id,
                expires_at=hold.expires_at,
            )
        return expired

    def _check_rate_limit(
        self, booking_id: str, actor_id: str, rules: HoldRules, now: datetime
    ) -> None:
        since = now - timedelta(seconds=rules.rate_window_seconds)
        recent = [
            hold
            for hold in self.holds_of(booking_id)
            if hold.actor_id == actor_id and hold.placed_at > since
        ]
        if len(recent) >= rules.rate_limit:
            oldest = min(hold.placed_at for hold in recent)
            raise HoldError(
                ErrorCode.HOLD_RATE_LIMITED,
                f"{actor_id} placed {len(recent)} holds for booking {booking_id} "
                f"in the last {rules.rate_window_seconds} s",
                details={
                    "booking_id": booking_id,
                    "actor_id": actor_id,
                    "limit": rules.rate_limit,
                    "window_seconds": rules.rate_window_seconds,
                    "retry_at": utc_instant(oldest + timedelta(seconds=rules.rate_window_seconds)),
                },
            )

    @staticmethod
    def _check_hold_actor(hold: HoldState, actor_id: str, role: ActorRole, action: str) -> None:
        if hold.actor_id != actor_id and role not in ("manager", "system"):
            raise HoldError(
                ErrorCode.HOLD_FORBIDDEN,
                f"only {hold.actor_id} or a manager may {action} hold {hold.hold_id}",
                details={"hold_id": hold.hold_id, "actor_id": actor_id, "action": action},
            )
