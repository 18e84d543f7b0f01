"""Moving a restaurant between shards, and dropping the copy it left behind.

``RestaurantMove(router).move(restaurant, target)``:

1. *copy, live*: the restaurant's streams (every aggregate whose creating event names it:
   layout, service days, booking and hold directory entries, command-ledger entries) are
   copied to the target in the source's log order, byte for byte, same ids and versions,
   while its commands keep running on the source; the target parks the outbox messages the
   copies recreate (:mod:`.fence`);
2. *switch* (commands refused with RESTAURANT_MOVING, only here): the source's fence says
   ``moving`` and the move takes the restaurant's lock exclusively, so the calls in flight
   finish and no later one writes; the events written since the first pass are copied;
   the restaurant's digest (:func:`restaurant_digest`, the audit's per-event digest over its
   events in (aggregate, version) order) must be equal on both sides; the source hands over
   every message it has not delivered (``discarded`` there) and the target's copies of the
   others take their source's delivery state; the map gets a new version with the restaurant
   on the target, and the source's fence says ``moved``. A failure before the new map
   reopens the source (with its messages); after it, the target is current;
2b. :meth:`RestaurantMove.finish`: the target's messages still parked (the ones handed over,
   and any written since the switch) become pending, and the target stops parking: each
   message is sent once, by one side;
3. ``drop_copy``: an explicit, later step deletes the source's copy (events and rows).

The restaurant's streams are found by scanning the source's log (creating events only are
decoded), so a move costs a read of the source's log: see docs/operations.md, *Moving*.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification, StoredEvent
from psycopg import sql

from seatledger.application.audit.digest import event_digest
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.shards.fence import FENCES, INCOMING, PARKED, fence_key
from seatledger.application.shards.map import MapStore
from seatledger.application.shards.router import ShardedService
from seatledger.domain.errors import ErrorCode, InvalidInputError, SeatLedgerError

PAGE = 1000
#: Delivery columns a message keeps from the source (status and what the relay recorded).
_CARRIED = ("status", "attempts", "last_error", "published_at", "published_via")


@dataclass
class Streams:
    """A restaurant's aggregates in a store, and the events found so far in log order."""

    ids: set[UUID] = field(default_factory=set)
    events: list[StoredEvent] = field(default_factory=list)
    position: int = 0


@dataclass(frozen=True)
class MoveReport:
    restaurant_id: str
    source: str
    target: str
    aggregates: int
    events: int
    digest: str
    map_version: int
    messages_carried: int
    messages_taken_over: int
    #: Seconds the restaurant's commands were refused (the switch).
    switch_seconds: float
    seconds: float


@dataclass(frozen=True)
class DropReport:
    restaurant_id: str
    shard: str
    events: int
    members: int
    messages: int


def scan(service: AssignmentService, restaurant_id: str, streams: Streams) -> Streams:
    """Extend ``streams`` with the log after its position: an aggregate is the restaurant's
    if its creating event (version 1) names it; its later events follow in the log."""
    recorder, mapper = service.recorder, service.mapper
    while True:
        page: Sequence[Notification] = recorder.select_notifications(streams.position + 1, PAGE)
        for notification in page:
            oid = _uuid(notification.originator_id)
            if notification.originator_version == 1 and oid not in streams.ids:
                event = mapper.to_domain_event(notification)
                if getattr(event, "restaurant_id", None) == restaurant_id:
                    streams.ids.add(oid)
            if oid in streams.ids:
                streams.events.append(
                    StoredEvent(
                        originator_id=oid,
                        originator_version=notification.originator_version,
                        topic=notification.topic,
                        state=notification.state,
                    )
                )
        if page:
            streams.position = page[-1].id
        if len(page) < PAGE:
            return streams


def restaurant_digest(service: AssignmentService, ids: Iterable[UUID]) -> tuple[int, str]:
    """(events, digest) of the restaurant's streams in a store: SHA-256 over the audit's
    per-event digests in (aggregate, version) order. Equal on two stores exactly when both
    hold the same events (ids, versions, topics and bytes), wherever they sit in the log."""
    digest = hashlib.sha256(b"seatledger-restaurant-digest/1")
    count = 0
    for oid in sorted(ids, key=str):
        for stored in service.recorder.select_events(oid):
            digest.update(
                event_digest(oid, stored.originator_version, stored.topic, bytes(stored.state))
            )
            count += 1
    return count, digest.hexdigest()


class RestaurantMove:
    """Moves restaurants between the shards of a :class:`ShardedService`."""

    def __init__(self, router: ShardedService) -> None:
        self.router = router
        self.store = MapStore(router.settings)

    def move(self, restaurant_id: str, target: str) -> MoveReport:
        started = time.monotonic()
        source = self.router.map.refresh().shard_for(restaurant_id)
        if target not in self.router.services:
            raise _invalid("target", f"no shard named {target!r}")
        if source == target:
            raise _invalid("target", f"restaurant {restaurant_id} is on {target} already")
        src, dst = self.router.services[source], self.router.services[target]
        src_settings = self.router.shard_settings[source]
        dst_settings = self.router.shard_settings[target]
        if self.router.fences[source].state(restaurant_id) != "open":
            raise _invalid("restaurant_id", f"restaurant {restaurant_id} is moving already")
        streams = scan(src, restaurant_id, Streams())
        if not streams.ids:
            raise SeatLedgerError(
                ErrorCode.RESTAURANT_NOT_FOUND,
                f"restaurant {restaurant_id} has no events on {source}",
                details={"restaurant_id": restaurant_id, "shard": source},
            )
        self._refuse_leftovers(dst, restaurant_id, streams.ids, target)
        _execute(
            dst_settings,
            "INSERT INTO {} (restaurant_id, source) VALUES (%s, %s)"
            " ON CONFLICT (restaurant_id) DO UPDATE SET source = excluded.source",
            INCOMING,
            (restaurant_id, source),
        )
        copied = _copy(dst, streams.events)
        streams.events = []
        switched, taken = False, set[str]()
        with psycopg.connect(src_settings.postgres_conninfo(), autocommit=True) as lock:
            self._set_fence(src_settings, restaurant_id, "moving", target)
            switch_started = time.monotonic()
            try:
                lock.execute("SELECT pg_advisory_lock(%s)", (fence_key(restaurant_id),))
                scan(src, restaurant_id, streams)
                copied += _copy(dst, streams.events)
                events, digest = restaurant_digest(src, streams.ids)
                target_events, target_digest = restaurant_digest(dst, streams.ids)
                if (events, digest) != (target_events, target_digest):
                    raise SeatLedgerError(
                        ErrorCode.INVALID_INPUT,
                        f"the copy of {restaurant_id} differs from its source: not switched",
                        details={
                            "source": [events, digest],
                            "target": [target_events, target_digest],
                        },
                    )
                taken, states = self._take_over(src, dst, restaurant_id)
                carried = _carry(dst_settings, restaurant_id, states, taken)
                new_map = self.store.publish(
                    self.store.latest().with_assignment(restaurant_id, target),
                    f"moved {restaurant_id} from {source} to {target}",
                )
                switched = True
                self._set_fence(src_settings, restaurant_id, "moved", target)
            except BaseException:
                if not switched:  # after the switch the target is current: never reopen
                    self._abort(src_settings, restaurant_id, taken)
                raise
            finally:
                with contextlib.suppress(psycopg.Error):
                    lock.execute("SELECT pg_advisory_unlock(%s)", (fence_key(restaurant_id),))
            switch_seconds = time.monotonic() - switch_started
        self.router.map.refresh()
        self.finish(restaurant_id)
        return MoveReport(
            restaurant_id=restaurant_id,
            source=source,
            target=target,
            aggregates=len(streams.ids),
            events=events,
            digest=digest,
            map_version=new_map.version,
            messages_carried=carried,
            messages_taken_over=len(taken),
            switch_seconds=round(switch_seconds, 3),
            seconds=round(time.monotonic() - started, 3),
        )

    def drop_copy(self, restaurant_id: str, shard: str) -> DropReport:
        """Delete the copy a move left on ``shard`` (its fence must say ``moved`` and the map
        must place the restaurant elsewhere)."""
        if shard not in self.router.services:
            raise _invalid("shard", f"no shard named {shard!r}")
        if self.router.map.refresh().shard_for(restaurant_id) == shard:
            raise _invalid("shard", f"{shard} is where restaurant {restaurant_id} lives")
        if self.router.fences[shard].state(restaurant_id) != "moved":
            raise _invalid("shard", f"restaurant {restaurant_id} was not moved away from {shard}")
        service = self.router.services[shard]
        settings = self.router.shard_settings[shard]
        streams = scan(service, restaurant_id, Streams())
        table = getattr(service.recorder, "events_table_name", "seatledger_events")
        with (
            psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn,
            conn.transaction(),
        ):
            events = conn.execute(
                sql.SQL("DELETE FROM {} WHERE originator_id = ANY(%s)").format(
                    sql.Identifier(settings.postgres_schema, table)
                ),
                (list(streams.ids),),
            ).rowcount
            counts = [
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE restaurant_id = %s").format(
                        sql.Identifier(settings.postgres_schema, name)
                    ),
                    (restaurant_id,),
                ).rowcount
                for name in ("seatledger_members", "seatledger_outbox")
            ]
        return DropReport(restaurant_id, shard, events, counts[0], counts[1])

    # --- steps ---

    def _refuse_leftovers(
        self, target: AssignmentService, restaurant_id: str, ids: set[UUID], name: str
    ) -> None:
        if any(target.recorder.select_events(oid, limit=1) for oid in ids):
            raise _invalid(
                "target",
                f"{name} still holds an old copy of {restaurant_id}: drop it first"
                f" (seatledger shards drop-copy {restaurant_id} --shard {name})",
            )

    def _set_fence(self, settings: Settings, restaurant_id: str, state: str, target: str) -> None:
        _execute(
            settings,
            "INSERT INTO {} (restaurant_id, state, target) VALUES (%s, %s, %s)"
            " ON CONFLICT (restaurant_id) DO UPDATE SET state = excluded.state,"
            " target = excluded.target, updated_at = now()",
            FENCES,
            (restaurant_id, state, target),
        )

    def finish(self, restaurant_id: str) -> int:
        """The last step of a move, after the switch (idempotent; ``seatledger shards finish``
        re-runs it when a move failed after its switch): the source's fence says ``moved``,
        the target's messages still parked become pending, and the target stops parking.
        Returns the messages released (0: nothing was left to finish)."""
        shard = self.router.map.refresh().shard_for(restaurant_id)
        settings = self.router.shard_settings[shard]
        incoming = sql.Identifier(settings.postgres_schema, INCOMING)
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            row = conn.execute(
                sql.SQL("SELECT source FROM {} WHERE restaurant_id = %s").format(incoming),
                (restaurant_id,),
            ).fetchone()
        if row is None:
            return 0
        source = str(row[0])
        if source in self.router.shard_settings:
            self._set_fence(self.router.shard_settings[source], restaurant_id, "moved", shard)
        outbox = sql.Identifier(settings.postgres_schema, "seatledger_outbox")
        fences = sql.Identifier(settings.postgres_schema, FENCES)
        with (
            psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn,
            conn.transaction(),
        ):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE restaurant_id = %s").format(incoming),
                (restaurant_id,),
            )
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE restaurant_id = %s").format(fences),
                (restaurant_id,),
            )
            released = conn.execute(
                sql.SQL(
                    "UPDATE {} SET next_attempt_at = NULL, last_error = NULL"
                    " WHERE restaurant_id = %s AND last_error = %s"
                ).format(outbox),
                (restaurant_id, PARKED),
            ).rowcount
        return released

    def _abort(self, settings: Settings, restaurant_id: str, taken: set[str]) -> None:
        """A switch that failed before the map changed opens the source again, with the
        messages it had handed over (the target's copy stays parked, to be dropped)."""
        outbox = sql.Identifier(settings.postgres_schema, "seatledger_outbox")
        with (
            contextlib.suppress(psycopg.Error),  # a source that is down still says moving
            psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn,
            conn.transaction(),
        ):
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET status = 'pending', last_error = NULL"
                    " WHERE message_id = ANY(%s) AND status = 'discarded'"
                ).format(outbox),
                (sorted(taken),),
            )
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE restaurant_id = %s AND state = 'moving'").format(
                    sql.Identifier(settings.postgres_schema, FENCES)
                ),
                (restaurant_id,),
            )

    def _take_over(
        self, src: AssignmentService, dst: AssignmentService, restaurant_id: str
    ) -> tuple[set[str], dict[str, tuple[Any, ...]]]:
        """The source hands over every message it has not delivered (``discarded`` there;
        one a relay is sending is waited for, up to the relay lease). Returns the ids taken
        and the delivery state of every message of the restaurant on the source."""
        src.catch_up_projections()
        dst.catch_up_projections()
        settings = src.settings
        outbox = sql.Identifier(settings.postgres_schema, "seatledger_outbox")
        taken: set[str] = set()
        deadline = time.monotonic() + settings.relay_lease_seconds + 5
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            while True:
                rows = conn.execute(
                    sql.SQL(
                        "UPDATE {} SET status = 'discarded', last_error = %s,"
                        " locked_until = NULL, lease_token = NULL WHERE restaurant_id = %s"
                        " AND (status = 'pending' OR (status = 'processing'"
                        " AND locked_until < now())) RETURNING message_id"
                    ).format(outbox),
                    ("moved to another shard: sent from there", restaurant_id),
                ).fetchall()
                taken.update(str(row[0]) for row in rows)
                busy = conn.execute(
                    sql.SQL(
                        "SELECT count(*) FROM {} WHERE restaurant_id = %s AND status = 'processing'"
                    ).format(outbox),
                    (restaurant_id,),
                ).fetchone()
                if not busy or not busy[0] or time.monotonic() > deadline:
                    break
                time.sleep(0.1)  # a relay is delivering: its outcome decides
            states = {
                str(row[0]): tuple(row[1:])
                for row in conn.execute(
                    sql.SQL("SELECT message_id, {} FROM {} WHERE restaurant_id = %s").format(
                        sql.SQL(", ").join(map(sql.Identifier, _CARRIED)), outbox
                    ),
                    (restaurant_id,),
                ).fetchall()
            }
        return taken, states


def _carry(
    settings: Settings, restaurant_id: str, states: dict[str, tuple[Any, ...]], taken: set[str]
) -> int:
    """The target's parked messages that the source delivered (or gave up on) keep its
    delivery state; the others stay parked until :meth:`RestaurantMove.finish` releases them
    after the switch. Returns the messages carried."""
    outbox = sql.Identifier(settings.postgres_schema, "seatledger_outbox")
    carried = 0
    with (
        psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn,
        conn.transaction(),
    ):
        parked = conn.execute(
            sql.SQL(
                "SELECT message_id FROM {} WHERE restaurant_id = %s AND last_error = %s"
            ).format(outbox),
            (restaurant_id, PARKED),
        ).fetchall()
        for (message_id,) in parked:
            state = states.get(str(message_id))
            if state is None or str(message_id) in taken or state[0] == "pending":
                continue
            carried += 1
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET status = %s, attempts = %s, last_error = %s,"
                    " published_at = %s, published_via = %s, next_attempt_at = NULL"
                    " WHERE message_id = %s"
                ).format(outbox),
                (*state, message_id),
            )
    return carried


def _copy(target: AssignmentService, events: Sequence[StoredEvent]) -> int:
    for start in range(0, len(events), PAGE):
        target.recorder.insert_events(events[start : start + PAGE])
    return len(events)


def _execute(settings: Settings, statement: str, table: str, params: tuple[Any, ...]) -> None:
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL(statement).format(sql.Identifier(settings.postgres_schema, table)), params
        )


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _invalid(field_name: str, error: str) -> InvalidInputError:
    return InvalidInputError(error, details={"errors": [{"field": field_name, "error": error}]})
