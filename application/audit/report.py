"""What an audit, a floor, a timeline and a diff answer: pydantic models, JSON as they dump.

Every instant is the canonical UTC string (``YYYY-MM-DDTHH:MM:SSZ``) and every list is in a
stable order, so the same log always gives the same report (``seconds`` aside).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DifferenceKind = Literal["missing", "extra", "changed"]
TamperKind = Literal["edited", "deleted", "inserted", "reordered"]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- read models ------------------------------------------------------------------------------


class Difference(Model):
    """One row that differs: ``missing`` from the live table, ``extra`` in it (history does
    not produce it), or ``changed`` (same key, other values: ``columns`` name them)."""

    kind: DifferenceKind
    table: str
    key: dict[str, str]
    #: The log position of the event that produced the row (the rebuilt row's; for an extra
    #: row, the position the live row claims).
    position: int | None
    columns: list[str] = []
    live: dict[str, Any] | None = None
    rebuilt: dict[str, Any] | None = None


class ReadModelReport(Model):
    """One read model, live against rebuilt from the log, at the live tracking position."""

    name: str
    table: str
    #: The live projection's tracking position: the replay was compared at exactly this point.
    position: int
    #: False when the audit ended before ``position`` (``--until``): nothing was compared.
    compared: bool
    live: int
    rebuilt: int
    missing: int
    extra: int
    changed: int
    live_digest: str
    rebuilt_digest: str
    #: The first differences of each kind (missing, extra, changed), in key order.
    differences: list[Difference]
    ok: bool


# --- history invariants ---------------------------------------------------------------------


class Violation(Model):
    """A domain invariant that did not hold at one event of the log."""

    position: int
    kind: str
    instant: str
    restaurant_id: str | None
    service_date: str | None
    booking_ids: list[str]
    table_ids: list[str]
    message: str


class InvariantReport(Model):
    events_checked: int
    violations: int
    #: The first violations, in log order.
    first: list[Violation]


# --- the log itself -------------------------------------------------------------------------


class TamperFinding(Model):
    """Where the log no longer matches a checkpoint recorded earlier."""

    kind: TamperKind
    #: The position the checkpoint recorded (deleted, edited, reordered) or the position of
    #: an event the checkpoint does not know (inserted).
    position: int
    originator_id: str
    originator_version: int
    #: Where that event is now (reordered), if anywhere.
    now_at: int | None = None
    message: str


class CheckpointReport(Model):
    path: str
    action: Literal["written", "verified"]
    ok: bool
    #: What the checkpoint covers: its events, last position and chained digest.
    events: int
    last_position: int
    head: str
    #: The current log's chained digest over the same span (verify only).
    current_head: str | None = None
    findings: list[TamperFinding] = []


class LogReport(Model):
    """The chained digest of the log replayed: each event's digest covers the event and
    the digest before it, so the head covers the whole log, in order."""

    events: int
    last_position: int
    head: str
    checkpoint: CheckpointReport | None = None


class AuditReport(Model):
    ok: bool
    #: Where the replay stopped: the end of the log, or the ``until`` bound.
    events: int
    last_position: int
    until_position: int | None = None
    until_instant: str | None = None
    read_models: list[ReadModelReport]
    invariants: InvariantReport
    log: LogReport
    seconds: float


# --- time travel ----------------------------------------------------------------------------


class TableHold(Model):
    hold_id: str
    booking_id: str
    window_start: str
    window_end: str
    expires_at: str
    source: str
    actor_id: str


class TableAssignment(Model):
    booking_id: str
    assignment_id: str
    window_start: str
    window_end: str
    source: str
    merge_group_id: str | None
    status: str


class TableAt(Model):
    table_id: str
    zone_id: str | None
    capacity: int | None
    active: bool | None
    assignments: list[TableAssignment]
    holds: list[TableHold]


class FloorAt(Model):
    """A restaurant-day's floor as the log stood at an instant or a position."""

    restaurant_id: str
    service_date: str
    at: str | None
    position: int | None
    #: The day aggregate's version the answer reflects (0: nothing recorded yet).
    day_version: int
    layout_version: int
    tables: list[TableAt]


class TimelineEntry(Model):
    """One event about a booking."""

    version: int
    at: str
    event: str
    command_id: str
    actor_id: str
    source: str | None = None
    idempotency_key: str | None = None
    hold_id: str | None = None
    tables_before: list[str] = []
    tables_after: list[str] = []
    status: str | None = None
    drift_kind: str | None = None
    reason: str | None = None
    details: dict[str, Any] = {}


class BookingTimeline(Model):
    restaurant_id: str
    booking_id: str
    service_date: str
    entries: list[TimelineEntry]


class FloorChange(Model):
    """What changed on one table between two instants."""

    table_id: str
    kind: Literal["assignment", "hold"]
    change: Literal["added", "removed", "changed"]
    booking_id: str
    ref: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class FloorDiff(Model):
    restaurant_id: str
    service_date: str
    start: str
    end: str
    changes: list[FloorChange]


# --- rebuilds -------------------------------------------------------------------------------


class RebuildReport(Model):
    """One read model rebuilt beside the live one and swapped in."""

    name: str
    #: The log position the rebuilt read model stands at (its tracking position now).
    position: int
    rows: int
    inserted: int
    updated: int
    deleted: int
    #: Messages whose delivery state (status, attempts, published_at...) was kept.
    kept_delivery_state: int = 0
    digest: str
    #: The live rows equalled the rebuilt rows before the swap committed.
    verified: bool
