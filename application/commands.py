"""Commands: the pydantic models the service API takes.

Every command carries a ``command_id`` (re-sending a command with the same id is always safe:
the original result comes back and nothing is written twice) and the acting user. Service
methods also accept a plain mapping, which is validated into the model; bad input of either
kind becomes ``INVALID_INPUT`` with the offending fields in the details.
"""

from __future__ import annotations

from datetime import date, time
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from seatledger.application.inputs import enforce
from seatledger.domain.layout import Table, Zone
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import ActorRole

Id = str


def _new_command_id() -> str:
    return str(uuid4())


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", revalidate_instances="always")

    restaurant_id: Id = Field(min_length=1, max_length=200)
    command_id: Id = Field(default_factory=_new_command_id, min_length=1, max_length=200)
    actor_id: Id = Field(default="anonymous", min_length=1, max_length=200)
    actor_role: ActorRole = "host"

    @model_validator(mode="after")
    def _input_contract(self) -> Command:
        """Every text and date of the command, nested values included (docs/api.md)."""
        enforce(self)
        return self


def _table_list(ids: list[str]) -> list[str]:
    if any(not table_id for table_id in ids):
        raise ValueError("table ids must be non-empty strings")
    return ids


# --- layout ---------------------------------------------------------------------------------


class CreateRestaurant(Command):
    """Create a restaurant with its policy and, optionally, its whole initial floor."""

    name: str = ""
    policy: VenuePolicy = Field(default_factory=VenuePolicy)
    zones: list[Zone] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    adjacency: list[tuple[Id, Id]] = Field(default_factory=list)


class DefineZone(Command):
    zone: Zone


class DefineTable(Command):
    """Create or change a table (deactivate with ``active=False``; tables are never deleted)."""

    table: Table


class LinkTables(Command):
    edges: list[tuple[Id, Id]] = Field(min_length=1)


class UnlinkTables(Command):
    edges: list[tuple[Id, Id]] = Field(min_length=1)


class ChangePolicy(Command):
    policy: VenuePolicy


# --- bookings -------------------------------------------------------------------------------


class RegisterBooking(Command):
    """A booking at a local wall-clock time; its block window is fixed here, from the policy."""

    booking_id: Id = Field(min_length=1, max_length=200)
    party_size: int = Field(ge=1, le=100)
    service_date: date
    start_time: time
    service: str | None = None

    @field_validator("start_time")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("start_time is local wall-clock time and carries no timezone")
        return value


class BookingCommand(Command):
    booking_id: Id = Field(min_length=1, max_length=200)


class CancelBooking(BookingCommand):
    pass


class MarkNoShow(BookingCommand):
    pass


class CompleteBooking(BookingCommand):
    pass


# --- holds ----------------------------------------------------------------------------------


class PlaceHold(BookingCommand):
    """A host's manual selection. ``replaces_hold_id`` swaps one of the booking's own holds."""

    table_ids: list[Id] = Field(max_length=50)
    ttl_seconds: int | None = Field(default=None, ge=1)
    require_adjacency: bool | None = None
    replaces_hold_id: Id | None = None

    _tables = field_validator("table_ids")(_table_list)


class ExtendHold(Command):
    hold_id: Id = Field(min_length=1)
    ttl_seconds: int | None = Field(default=None, ge=1)


class ReleaseHold(Command):
    hold_id: Id = Field(min_length=1)


class ExpireHolds(Command):
    service_date: date


# --- assignments ----------------------------------------------------------------------------


class ConfirmHold(BookingCommand):
    hold_id: Id = Field(min_length=1)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class AssignTables(BookingCommand):
    """Assign by hand (no hold). Adds to the booking's tables; ``replace=True`` moves it."""

    table_ids: list[Id] = Field(max_length=50)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    replace: bool = False
    require_adjacency: bool | None = None

    _tables = field_validator("table_ids")(_table_list)


class UnassignTables(BookingCommand):
    """Remove the named tables, or all of them when ``table_ids`` is None."""

    table_ids: list[Id] | None = None


# --- automated path -------------------------------------------------------------------------


class QuoteBooking(BookingCommand):
    """Plan the booking's tables and hold the best candidate (no candidate: a reason)."""

    ttl_seconds: int | None = Field(default=None, ge=1)


class AutoAssign(BookingCommand):
    """Quote then confirm; on drift release the stale hold, re-quote and retry.

    ``max_attempts`` counts confirms (default from settings: 2); ``retry_on_drift=False``
    makes the first drift final. A live hold from an earlier quote is confirmed first.
    """

    max_attempts: int | None = Field(default=None, ge=1, le=10)
    retry_on_drift: bool | None = None
    ttl_seconds: int | None = Field(default=None, ge=1)


#: Which service method runs which command (``AssignmentService.execute`` dispatches on it).
COMMAND_METHODS: dict[type[Command], str] = {
    CreateRestaurant: "create_restaurant",
    DefineZone: "define_zone",
    DefineTable: "define_table",
    LinkTables: "link_tables",
    UnlinkTables: "unlink_tables",
    ChangePolicy: "change_policy",
    RegisterBooking: "register_booking",
    CancelBooking: "cancel_booking",
    MarkNoShow: "mark_no_show",
    CompleteBooking: "complete_booking",
    PlaceHold: "place_hold",
    ExtendHold: "extend_hold",
    ReleaseHold: "release_hold",
    ExpireHolds: "expire_holds",
    ConfirmHold: "confirm_hold",
    AssignTables: "assign_tables",
    UnassignTables: "unassign_tables",
    QuoteBooking: "quote",
    AutoAssign: "auto_assign",
}
