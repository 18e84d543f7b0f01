"""Where the projections' events come from: pages of notifications, decoded, each with the
service day it belongs to.

Day events name their day (restaurant id and service date), so projecting them needs no
extra read. Events stored before they did are upcast with the day unknown; for those alone
the day is looked up from the aggregate's first event (``ServiceDayOpened``), once per day.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import DayEvent, ServiceDayOpened
from seatledger.projections.decoding import EventDecoder
from seatledger.projections.projection import DayInfo


class EventSource:
    """Reads notifications from the event store, decodes them and finds their service day."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        self.recorder = recorder
        self.mapper = mapper
        #: the mapper's results, by pydantic's JSON path where it can (the hot loop's cost)
        self.decoder = EventDecoder(mapper)
        self._days: dict[UUID, DayInfo] = {}
        self._lock = threading.Lock()
        #: the last events decoded or saved here, with their notifications, by notification
        #: id (oldest first)
        self._memo: dict[int, tuple[Notification, DomainEvent]] = {}

    def page(self, after: int, limit: int, topics: Sequence[str]) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            start=after, limit=limit, topics=topics, inclusive_of_start=False
        )

    def max_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    #: Notifications a count reads per page where it cannot ask the database to count.
    COUNT_PAGE = 1000

    def count_after(self, after: int, topics: Sequence[str]) -> int:
        """How many notifications of ``topics`` are stored after ``after``: counted by the
        database (PostgreSQL, SQLite), else paged through (memory)."""
        recorder = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = psycopg.sql.SQL(
                "SELECT count(*) AS n FROM {}.{} WHERE notification_id > %s AND topic = ANY(%s)"
            ).format(
                psycopg.sql.Identifier(recorder.datastore.schema),
                psycopg.sql.Identifier(recorder.events_table_name),
            )
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(statement, (after, list(topics)))
                row = cursor.fetchone()
            return int(row["n"]) if row else 0
        if isinstance(recorder, SQLiteApplicationRecorder):
            marks = ", ".join("?" for _ in topics)
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    f"SELECT count(*) FROM {recorder.events_table_name}"
                    f" WHERE rowid > ? AND topic IN ({marks})",
                    (after, *topics),
                )
                return int(cursor.fetchone()[0])
        count = 0
        while page := self.page(after, self.COUNT_PAGE, topics):
            count, after = count + len(page), page[-1].id
        return count

    #: Decoded events remembered: projections that take turns a page each (the members and
    #: the outbox read mostly the same events, the change topics) decode each event once.
    #: Events are frozen values and notification ids never name another event, so sharing
    #: is safe; a failure to decode is not remembered.
    MEMO = 4096

    def decode(self, notification: Notification) -> DomainEvent:
        with self._lock:
            known = self._memo.get(notification.id)
        if known is not None:
            return known[1]
        event = self.decoder.decode(notification)
        with self._lock:
            self._remember(notification, event)
        return event

    def _remember(self, notification: Notification, event: DomainEvent) -> None:
        self._memo[notification.id] = (notification, event)
        if len(self._memo) > self.MEMO:
            del self._memo[next(iter(self._memo))]

    def saved(self, events: Sequence[tuple[Notification, DomainEvent]]) -> None:
        """What this process just saved, as the recorder numbered it, each event as decoding
        its notification would give it (the caller's promise: the application adds what its
        mapper stores beside the event's fields), so the projections do not decode them
        again (in-process mode)."""
        with self._lock:
            for notification, event in events:
                self._remember(notification, event)

    def known_page(
        self, after: int, limit: int, topics: Sequence[str], upto: int
    ) -> list[Notification] | None:
        """The page after ``after`` up to ``upto`` (a save's last notification id) from
        memory, without reading the log: only if every notification id in between is
        remembered (each is then committed, and none can be missing from a read of the log
        up to ``upto``); None at the first gap (another writer's events, an evicted one):
        read the log. Events after ``upto`` are left to the next read of the log."""
        if upto <= after:
            return []
        if upto - after > self.MEMO:
            return None
        wanted = set(topics)
        page: list[Notification] = []
        with self._lock:
            for notification_id in range(after + 1, upto + 1):
                known = self._memo.get(notification_id)
                if known is None:
                    return None
                if known[0].topic in wanted:
                    page.append(known[0])
                    if len(page) >= limit:
                        break
        return page

    def day_of(self, event: DomainEvent) -> DayInfo:
        """The service day an event belongs to: named by the event itself, or (events
        stored before day events named their day) looked up."""
        if (
            isinstance(event, DayEvent | ServiceDayOpened)
            and event.restaurant_id is not None
            and event.service_date is not None
        ):
            return DayInfo(event.restaurant_id, event.service_date)
        return self.stored_day(event.originator_id)

    def stored_day(self, originator_id: UUID) -> DayInfo:
        """The fallback: the day as its first stored event names it, read once per day."""
        with self._lock:
            known = self._days.get(originator_id)
        if known is not None:
            return known
        info = self.read_day(originator_id)
        with self._lock:
            self._days[originator_id] = info
        return info

    def read_day(self, originator_id: UUID) -> DayInfo:
        """Read the day's first stored event (``ServiceDayOpened``)."""
        (first,) = self.recorder.select_events(originator_id, limit=1)
        opened = self.mapper.to_domain_event(first)
        if not isinstance(opened, ServiceDayOpened):
            raise LookupError(f"{originator_id} is not a service day")
        return DayInfo(opened.restaurant_id, opened.service_date)
