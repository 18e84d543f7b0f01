"""Re-sent commands and idempotency keys on a service day: a command id seen before
replays its original result; a key binds a booking to one table set (docs/domain.md §7).
"""

from __future__ import annotations

from seatledger.domain.errors import (
    IdempotencyMismatchError,
    PolicyDriftError,
)
from seatledger.domain.layout import FloorView
from seatledger.domain.service_day.conflicts import DayConflicts
from seatledger.domain.service_day.state import (
    BookingState,
    HoldState,
    Outcome,
    derive_idempotency_key,
)
from seatledger.domain.values import sorted_unique


class DayIdempotency(DayConflicts):
    """Replays by command id and by idempotency key."""

    def drift_of_command(self, command_id: str) -> PolicyDriftError | None:
        recorded = self.command_drifts.get(command_id)
        if recorded is None:
            return None
        return PolicyDriftError(
            recorded.kind,
            f"hold {recorded.hold_id} is stale ({recorded.kind} changed since it was placed)",
            details={k: v for k, v in recorded.details.items() if k != "kind"},
        )

    def replay_confirm(
        self,
        *,
        booking_id: str,
        command_id: str,
        idempotency_key: str | None,
        hold: HoldState | None,
        floor: FloorView,
    ) -> Outcome | None:
        """Confirm check 1 (the whole order is :func:`.confirm.confirm_hold`): the original
        result of an identical earlier confirm, even if the hold is gone;
        ``IDEMPOTENCY_MISMATCH`` if the key confirmed other tables."""
        replay = self._command_replay(command_id, booking_id)
        if replay is not None:
            return replay
        booking = self.booking(booking_id)
        if hold is None:
            if idempotency_key is None:
                return None  # no key to look up without the hold's table set
            return self._idempotent_replay(booking, idempotency_key, False, None)
        key, derived = self._key(
            idempotency_key, booking, hold.tables, hold.policy_version or floor.policy_version
        )
        return self._idempotent_replay(booking, key, derived, hold.tables)

    def _key(
        self,
        given: str | None,
        booking: BookingState,
        tables: tuple[str, ...],
        policy_version: str,
    ) -> tuple[str, bool]:
        if given is not None:
            return given, False
        return (
            derive_idempotency_key(
                self.restaurant_id, booking.booking_id, tables, booking.window, policy_version
            ),
            True,
        )

    def _command_replay(self, command_id: str, booking_id: str) -> Outcome | None:
        """A command re-sent with the same command id (e.g. after a lost reply)."""
        if command_id not in self.seen_commands:
            return None
        drift = self.drift_of_command(command_id)
        if drift is not None:
            raise drift
        change = self.command_changes.get(command_id)
        booking = self.booking(change.booking_id if change else booking_id)
        return Outcome(booking=booking, change=change, replayed=True)

    def _idempotent_replay(
        self,
        booking: BookingState,
        key: str,
        derived: bool,
        requested: tuple[str, ...] | None,
    ) -> Outcome | None:
        """Same key and table set: the original result. A caller's key is bound for good;
        a derived key only while the booking still has the state it produced.
        ``requested=None`` (the hold is unknown) matches any recorded table set."""
        record = self.idempotency.get((booking.booking_id, key))
        if record is None:
            return None
        if requested is not None and record.requested != sorted_unique(requested):
            raise IdempotencyMismatchError(
                f"idempotency key {key!r} was used for booking {booking.booking_id} "
                "with another table set",
                details={
                    "booking_id": booking.booking_id,
                    "idempotency_key": key,
                    "original_tables": list(record.requested),
                    "requested_tables": list(sorted_unique(requested)),
                },
            )
        if derived and record.version != booking.last_change_version:
            return None
        return Outcome(booking=booking, change=record.change, replayed=True)
