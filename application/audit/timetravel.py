"""Time travel: the floor of a restaurant-day at an instant or a log position, a booking's
timeline, and what changed on the floor between two instants.

Each answer replays only the aggregates it needs (the restaurant's layout, the service day,
the booking's directory entry) through the domain's own ``mutate``. "At an instant" is every
event stored with a timestamp at or before it; "at a position" is every event of the log up
to that notification id, seen at the instant that notification was stored (holds expire by
that instant).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper

from seatledger.application.audit.report import (
    BookingTimeline,
    FloorAt,
    FloorChange,
    FloorDiff,
    TableAssignment,
    TableAt,
    TableHold,
    TimelineEntry,
)
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.directory import BookingFiled, booking_index_id
from seatledger.domain.errors import ErrorCode, InvalidInputError, NotFoundError
from seatledger.domain.layout import FloorLayout, layout_id
from seatledger.domain.service_day import (
    BookingClosed,
    BookingRegistered,
    ChangeSource,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PolicyDriftDetected,
    ServiceDay,
    day_id,
)
from seatledger.domain.service_day.events import DAY_EVENTS
from seatledger.domain.values import utc_instant
from seatledger.projections.projection import table_change

_PAGE = 1000
_TOPICS = tuple(event.TOPIC for event in (*DAY_EVENTS, *FloorLayout.EVENTS))


class TimeTravel:
    """Answers about the past, from the event store alone (no read model is read)."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        self.recorder = recorder
        self.mapper = mapper

    # --- the floor ---

    def floor(
        self,
        restaurant_id: str,
        service_date: date,
        *,
        at: datetime | None = None,
        position: int | None = None,
    ) -> FloorAt:
        """Per table of the floor: the bookings assigned to it and the live holds on it."""
        if (at is None) == (position is None):
            raise _invalid("at", "give exactly one of an instant or a log position")
        _require_aware(at, "at")
        if position is not None and position < 0:
            raise _invalid("position", "a log position is not negative")
        ids = (layout_id(restaurant_id), day_id(restaurant_id, service_date))
        if position is not None:
            events, seen_at = self._events_to_position(ids, position)
        else:
            assert at is not None
            events, seen_at = self._events_to_instant(ids, at), at
        layout, day, sources = _replay(events)
        if layout is None:
            raise NotFoundError(
                ErrorCode.RESTAURANT_NOT_FOUND,
                f"restaurant {restaurant_id} did not exist then",
                details={"restaurant_id": restaurant_id},
            )
        assert isinstance(layout, FloorLayout)
        assignments: dict[str, list[TableAssignment]] = {}
        holds: dict[str, list[TableHold]] = {}
        if isinstance(day, ServiceDay):
            for booking in day.bookings.values():
                for member in booking.members:
                    assignments.setdefault(member.table_id, []).append(
                        TableAssignment(
                            booking_id=booking.booking_id,
                            assignment_id=member.assignment_id,
                            window_start=utc_instant(booking.window.start),
                            window_end=utc_instant(booking.window.end),
                            source=sources.get(booking.booking_id, "manual"),
                            merge_group_id=booking.merge_group_id,
                            status=booking.status,
                        )
                    )
            for hold in day.holds.values():
                if seen_at is not None and not hold.is_live(seen_at):
                    continue
                if seen_at is None and hold.status != "live":
                    continue
                for table_id in hold.tables:
                    holds.setdefault(table_id, []).append(
                        TableHold(
                            hold_id=hold.hold_id,
                            booking_id=hold.booking_id,
                            window_start=utc_instant(hold.window.start),
                            window_end=utc_instant(hold.window.end),
                            expires_at=utc_instant(hold.expires_at),
                            source=hold.source,
                            actor_id=hold.actor_id,
                        )
                    )
        table_ids = sorted(set(layout.tables) | set(assignments) | set(holds))
        return FloorAt(
            restaurant_id=restaurant_id,
            service_date=service_date.isoformat(),
            at=None if at is None else utc_instant(at),
            position=position,
            day_version=day.version if day is not None else 0,
            layout_version=layout.version,
            tables=[
                TableAt(
                    table_id=table_id,
                    zone_id=_table(layout, table_id, "zone_id"),
                    capacity=_table(layout, table_id, "capacity"),
                    active=_table(layout, table_id, "active"),
                    assignments=sorted(
                        assignments.get(table_id, []), key=lambda a: (a.window_start, a.booking_id)
                    ),
                    holds=sorted(
                        holds.get(table_id, []), key=lambda h: (h.window_start, h.hold_id)
                    ),
                )
                for table_id in table_ids
            ],
        )

    def diff(
        self, restaurant_id: str, service_date: date, start: datetime, end: datetime
    ) -> FloorDiff:
        """Assignments and live holds added, removed or changed, table by table."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end < start:
            raise _invalid("end", "the end is before the start")
        before = self.floor(restaurant_id, service_date, at=start)
        after = self.floor(restaurant_id, service_date, at=end)
        return FloorDiff(
            restaurant_id=restaurant_id,
            service_date=service_date.isoformat(),
            start=utc_instant(start),
            end=utc_instant(end),
            changes=_changes(before, after),
        )

    # --- a booking's timeline ---

    def timeline(self, restaurant_id: str, booking_id: str) -> BookingTimeline:
        """Every event about the booking, in order: what, when, who, under which command."""
        filed = [
            self._decode(s)
            for s in self.recorder.select_events(
                booking_index_id(restaurant_id, booking_id), limit=1
            )
        ]
        if not filed or not isinstance(filed[0], BookingFiled):
            raise NotFoundError(
                ErrorCode.BOOKING_NOT_FOUND,
                f"booking {booking_id} not found in restaurant {restaurant_id}",
                details={"restaurant_id": restaurant_id, "booking_id": booking_id},
            )
        service_date = filed[0].service_date
        day: Any = None
        holds: set[str] = set()
        entries: list[TimelineEntry] = []
        for stored in self.recorder.select_events(day_id(restaurant_id, service_date)):
            event = self._decode(stored)
            before = day.bookings.get(booking_id) if isinstance(day, ServiceDay) else None
            if isinstance(event, HoldPlaced) and event.booking_id == booking_id:
                holds.add(event.hold_id)
            entry = _entry(event, booking_id, holds, before.tables if before else ())
            day = event.mutate(day)
            if entry is not None:
                after = day.bookings.get(booking_id)
                if after is not None and entry.status is None:
                    entry = entry.model_copy(update={"status": after.status})
                entries.append(entry)
        return BookingTimeline(
            restaurant_id=restaurant_id,
            booking_id=booking_id,
            service_date=service_date.isoformat(),
            entries=entries,
        )

    # --- reading ---

    def _decode(self, stored: Any) -> DomainEvent:
        event = self.mapper.to_domain_event(stored)
        assert isinstance(event, DomainEvent)
        return event

    def _events_to_instant(self, ids: Sequence[UUID], at: datetime) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for originator_id in ids:
            for stored in self.recorder.select_events(originator_id):
                event = self._decode(stored)
                if event.timestamp > at:
                    break  # an aggregate's events are a prefix: stop at the first later one
                events.append(event)
        return events

    def _events_to_position(
        self, ids: Sequence[UUID], position: int
    ) -> tuple[list[DomainEvent], datetime | None]:
        wanted = set(ids)
        events: list[DomainEvent] = []
        after = 0
        while after < position:
            page = self.recorder.select_notifications(
                start=after, limit=_PAGE, stop=position, topics=_TOPICS, inclusive_of_start=False
            )
            if not page:
                break
            events.extend(self._decode(n) for n in page if n.originator_id in wanted)
            after = page[-1].id
        stored_at = self.recorder.select_notifications(start=position, limit=1, stop=position)
        seen_at = self._decode(stored_at[0]).timestamp if stored_at else None
        return events, seen_at


def _replay(
    events: Iterable[DomainEvent],
) -> tuple[Any, ServiceDay | None, dict[str, ChangeSource]]:
    """The layout and the day after these events, and each booking's last change source."""
    aggregates: dict[UUID, Any] = {}
    sources: dict[str, ChangeSource] = {}
    for event in events:
        aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        change = table_change(event)
        if change is not None and change.tables:
            sources[change.booking_id] = change.source
    layout = next((a for a in aggregates.values() if isinstance(a, FloorLayout)), None)
    day = next((a for a in aggregates.values() if isinstance(a, ServiceDay)), None)
    return layout, day, sources


def _entry(
    event: DomainEvent, booking_id: str, holds: set[str], tables: tuple[str, ...]
) -> TimelineEntry | None:
    """The timeline entry an event makes for the booking, if it is about the booking."""
    common: dict[str, Any] = {
        "version": event.originator_version,
        "at": utc_instant(event.timestamp),
        "event": type(event).__name__,
        "command_id": event.command_id,
        "actor_id": event.actor_id,
        "tables_before": list(tables),
        "tables_after": list(tables),
    }
    change = table_change(event)
    if change is not None and change.booking_id == booking_id:
        common |= {
            "source": change.source,
            "idempotency_key": change.idempotency_key,
            "hold_id": change.hold_id,
            "tables_after": list(change.tables),
            "status": change.status,
        }
    if isinstance(event, BookingRegistered) and event.booking_id == booking_id:
        return TimelineEntry(
            **common,
            details={
                "party_size": event.party_size,
                "window": event.window.canonical(),
                "service": event.service,
            },
        )
    if isinstance(event, HoldPlaced) and event.booking_id == booking_id:
        return TimelineEntry(
            **common,
            source=event.source,
            hold_id=event.hold_id,
            details={
                "tables": list(event.tables),
                "expires_at": utc_instant(event.expires_at),
                "replaces_hold_id": event.replaces_hold_id,
            },
        )
    if isinstance(event, HoldExtended) and event.hold_id in holds:
        return TimelineEntry(
            **common, hold_id=event.hold_id, details={"expires_at": utc_instant(event.expires_at)}
        )
    if isinstance(event, HoldReleased | HoldExpired) and event.booking_id == booking_id:
        reason = event.reason if isinstance(event, HoldReleased) else "expired"
        return TimelineEntry(**common, hold_id=event.hold_id, reason=reason)
    if isinstance(event, PolicyDriftDetected) and event.booking_id == booking_id:
        return TimelineEntry(
            **common,
            hold_id=event.hold_id,
            drift_kind=event.kind,
            reason="confirm rejected: POLICY_DRIFT",
            details={**event.details, "attempt": event.attempt, "automated": event.automated},
        )
    if isinstance(event, BookingClosed) and event.booking_id == booking_id:
        return TimelineEntry(
            **(common | {"status": event.status}),
            details={"released_holds": list(event.released_holds)},
        )
    if change is not None and change.booking_id == booking_id:
        return TimelineEntry(**common)
    return None


def _changes(before: FloorAt, after: FloorAt) -> list[FloorChange]:
    def index(floor: FloorAt) -> dict[tuple[str, str, str], tuple[str, dict[str, Any]]]:
        found: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
        for table in floor.tables:
            for a in table.assignments:
                found[(table.table_id, "assignment", a.booking_id)] = (a.booking_id, a.model_dump())
            for h in table.holds:
                found[(table.table_id, "hold", h.hold_id)] = (h.booking_id, h.model_dump())
        return found

    old, new = index(before), index(after)
    changes = []
    for key in sorted(set(old) | set(new)):
        table_id, kind, ref = key
        was, now = old.get(key), new.get(key)
        if was is not None and now is not None and was[1] == now[1]:
            continue
        change = "added" if was is None else "removed" if now is None else "changed"
        changes.append(
            FloorChange(
                table_id=table_id,
                kind=kind,
                change=change,
                booking_id=(now or was or ("", {}))[0],
                ref=ref,
                before=None if was is None else was[1],
                after=None if now is None else now[1],
            )
        )
    return changes


def _table(layout: FloorLayout, table_id: str, name: str) -> Any:
    table = layout.tables.get(table_id)
    return None if table is None else getattr(table, name)


def _require_aware(moment: datetime | None, field: str) -> None:
    if moment is not None and moment.tzinfo is None:
        raise _invalid(field, "an instant needs a timezone (naive datetimes are ambiguous)")


def _invalid(field: str, error: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid {field}: {error}", details={"errors": [{"field": field, "error": error}]}
    )
