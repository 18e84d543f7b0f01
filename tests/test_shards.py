"""Shards (issue 14) on two real PostgreSQL servers: the shared one and a throwaway second one.

Routing by restaurant, the cross-shard tenancy check, RESTAURANT_MOVING during a switch, a
move under load (writers and relays running: nothing lost, nothing applied or sent twice,
equal digests) and dropping the old copy.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seatledger.application.audit import Audit
from seatledger.application.cli import main
from seatledger.application.commands import CancelBooking, Command
from seatledger.application.errors import InfrastructureCode, RestaurantMovingError
from seatledger.application.settings import Settings
from seatledger.application.shards.config import shard_settings
from seatledger.application.shards.fence import FENCES, INCOMING, PARKED
from seatledger.application.shards.map import MapStore, ShardMap
from seatledger.application.shards.move import (
    MoveReport,
    RestaurantMove,
    Streams,
    restaurant_digest,
    scan,
)
from seatledger.application.shards.router import ShardedService
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import Relay
from tests.support import DAY, assign, booking, floor, hold

pytestmark = pytest.mark.postgres


@pytest.fixture
def router(sharded: Settings) -> Iterator[ShardedService]:
    with ShardedService(sharded) as service:
        yield service


def test_each_restaurant_lives_on_its_shard_only(router: ShardedService) -> None:
    router.create_restaurant(floor("r1"))
    router.create_restaurant(floor("r2"))
    router.register_booking(booking("b1", restaurant_id="r1"))
    router.register_booking({**booking("b1", restaurant_id="r2").model_dump(), "party_size": 4})
    assert router.get_booking("r1", "b1").party_size == 2
    assert router.get_booking(restaurant_id="r2", booking_id="b1").party_size == 4
    a, b = router.services["a"], router.services["b"]
    assert a.get_restaurant("r1").restaurant_id == "r1"
    assert b.get_restaurant("r2").restaurant_id == "r2"
    for service, other in ((a, "r2"), (b, "r1")):
        with pytest.raises(SeatLedgerError) as caught:
            service.get_restaurant(other)
        assert caught.value.code == ErrorCode.RESTAURANT_NOT_FOUND
    assert b.settings.postgres_port != a.settings.postgres_port  # two servers
    current = router.current_map()
    assert (current.version, dict(current.assignments)) == (1, {"r1": "a", "r2": "b"})
    # the default rule is a stable hash over the shards the map was seeded with
    assert {current.shard_for(f"x{i}") for i in range(20)} == {"a", "b"}
    assert ShardMap(1, ("a", "b")).shard_for("x1") == current.shard_for("x1")


def test_a_restaurant_never_reaches_another_restaurants_ids_across_shards(
    router: ShardedService,
) -> None:
    router.create_restaurant(floor("r1"))
    router.create_restaurant({**floor("r2").model_dump(), "restaurant_id": "r2"})
    router.register_booking(booking("only-a", restaurant_id="r1"))
    placed = router.place_hold(hold("only-a", "M1", restaurant_id="r1"))
    router.register_booking(booking("b2", restaurant_id="r2"))
    cases: list[tuple[Callable[[], Any], ErrorCode]] = [
        (lambda: router.get_booking("r2", "only-a"), ErrorCode.BOOKING_NOT_FOUND),
        (lambda: router.get_hold("r2", placed.hold_id), ErrorCode.HOLD_NOT_FOUND),
        (
            lambda: router.confirm_hold(
                {"restaurant_id": "r2", "booking_id": "b2", "hold_id": placed.hold_id}
            ),
            ErrorCode.HOLD_NOT_FOUND,
        ),
        (
            lambda: router.cancel_booking(CancelBooking(restaurant_id="r2", booking_id="only-a")),
            ErrorCode.BOOKING_NOT_FOUND,
        ),
    ]
    for call, code in cases:
        with pytest.raises(SeatLedgerError) as caught:
            call()
        assert caught.value.code == code
    # releasing an unknown hold is a no-op answer (docs/domain.md): it releases nothing on a
    released = router.release_hold(
        {"restaurant_id": "r2", "hold_id": placed.hold_id, "actor_id": "host-1"}
    )
    assert (released.released, released.status) == (False, "unknown")
    kept = router.get_hold("r1", placed.hold_id)  # still there, on a
    assert (kept.booking_id, kept.status) == ("only-a", "live")


def test_commands_are_refused_with_restaurant_moving_only_during_the_switch(
    router: ShardedService,
) -> None:
    router.create_restaurant(floor("r1"))
    settings = router.shard_settings["a"]
    fence = sql.Identifier(settings.postgres_schema, FENCES)
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (restaurant_id, state, target) VALUES ('r1', 'moving', 'b')"
            ).format(fence)
        )
        with pytest.raises(RestaurantMovingError) as caught:
            router.register_booking(booking("b1", restaurant_id="r1"))
        assert caught.value.code == InfrastructureCode.RESTAURANT_MOVING
        assert caught.value.details == {"restaurant_id": "r1", "shard": "a"}
        assert router.get_restaurant("r1").restaurant_id == "r1"  # reads go on
        conn.execute(sql.SQL("DELETE FROM {}").format(fence))
    router.register_booking(booking("b1", restaurant_id="r1"))


class Collector:
    """A publisher that remembers every message id it was handed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[str] = []

    def publish(self, delivery: Delivery) -> None:
        with self.lock:
            self.sent.append(delivery.message_id)


def relay_until(stop: threading.Event, relay: Relay) -> None:
    while not stop.is_set():
        if not relay.run_once().claimed:
            stop.wait(0.02)


def outbox_ids(router: ShardedService, shard: str, restaurant_id: str) -> list[str]:
    with router.services[shard].read_models.read() as tx:
        rows = tx.execute(
            "SELECT message_id FROM seatledger_outbox WHERE restaurant_id = :r AND status = 'done'",
            {"r": restaurant_id},
        )
    return sorted(str(row[0]) for row in rows)


def test_a_restaurant_moves_between_servers_under_load(router: ShardedService) -> None:
    router.create_restaurant(floor("r1"))
    router.create_restaurant(floor("r2"))
    sent = Collector()
    stop_relays = threading.Event()
    relays = [
        threading.Thread(
            target=relay_until,
            args=(stop_relays, Relay(service.read_models, sent, Telemetry(), lease_seconds=5)),
        )
        for service in router.services.values()
    ]
    moving_seen = Counter[str]()
    applied: list[str] = []
    failures: list[BaseException] = []
    started = threading.Barrier(4)

    def send(command: Command) -> Any:
        while True:  # a re-send keeps its command id: applied once, whatever the timing
            try:
                return router.execute(command)
            except RestaurantMovingError:
                moving_seen["r1"] += 1
                threading.Event().wait(0.01)

    def writer(n: int) -> None:
        try:
            day = DAY + timedelta(days=n)
            started.wait()
            for i in range(12):
                booking_id = f"w{n}-{i}"
                register = booking(booking_id, restaurant_id="r1", service_date=day)
                send(register)
                send(assign(booking_id, "M1", restaurant_id="r1"))
                send(CancelBooking(restaurant_id="r1", booking_id=booking_id))
                send(register)  # an explicit re-send: answered from the ledger
                applied.append(booking_id)
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in [*relays, *writers]:
        thread.start()
    try:
        started.wait()
        while len(applied) < 3 and not failures:  # the move starts with writers under way
            threading.Event().wait(0.01)
        report = RestaurantMove(router).move("r1", "b")
        for thread in writers:
            thread.join()
        stop_relays.set()  # the rest is drained in this thread: no waiting on a timer
        for thread in relays:
            thread.join()
        moved_under_load(router, report, failures, applied, sent)
    finally:
        stop_relays.set()
        for thread in [*relays, *writers]:
            thread.join()
    back_and_forth(router)


def moved_under_load(
    router: ShardedService,
    report: MoveReport,
    failures: list[BaseException],
    applied: list[str],
    sent: Collector,
) -> None:
    assert failures == []
    assert router.shard_of("r1") == "b" and report.map_version == 2
    assert report.events > 0 and report.switch_seconds >= 0
    router.catch_up_projections()
    # nothing lost, nothing applied twice: every booking once, on b, cancelled once
    b = router.services["b"]
    for n in range(3):
        day = router.get_day("r1", DAY + timedelta(days=n))
        assert sorted(x.booking_id for x in day.bookings) == sorted(f"w{n}-{i}" for i in range(12))
        assert {x.status for x in day.bookings} == {"cancelled"}
    assert len(applied) == 36
    # equal digests: the copy at the switch, and the target now holds the same events
    streams = scan(router.services["a"], "r1", Streams())
    source_count, source_digest = restaurant_digest(router.services["a"], streams.ids)
    assert (source_count, source_digest) == (report.events, report.digest)
    # every message sent once: drain what the relays left, then compare with the outbox
    router.catch_up_projections()
    drains = [
        Relay(s.read_models, sent, Telemetry(), lease_seconds=5) for s in router.services.values()
    ]
    try:
        while any([drain.run_once().claimed for drain in drains]):
            pass
    finally:
        for drain in drains:
            drain.close()
    with b.read_models.read() as tx:
        left = tx.execute(
            "SELECT message_id, status, last_error, next_attempt_at, locked_until"
            " FROM seatledger_outbox WHERE status <> 'done' AND restaurant_id = 'r1'"
        )
    assert list(left) == []
    counts = Counter(sent.sent)
    assert [m for m, c in counts.items() if c > 1] == []
    assert sorted(set(sent.sent) & set(outbox_ids(router, "b", "r1"))) == outbox_ids(
        router, "b", "r1"
    )
    assert len(outbox_ids(router, "b", "r1")) >= 36 * 2  # a sync per assign and per cancel
    # the target's audit: its read models are what its log (with the copies) says
    assert Audit(b).run().ok


def back_and_forth(router: ShardedService) -> None:
    b = router.services["b"]
    streams = scan(b, "r1", Streams())
    source_count = len(scan(router.services["a"], "r1", Streams()).events)
    # the old copy is dropped explicitly; then r1 can move back, digests equal both ways
    with pytest.raises(SeatLedgerError) as caught:
        RestaurantMove(router).drop_copy("r1", "b")
    assert caught.value.code == ErrorCode.INVALID_INPUT
    dropped = RestaurantMove(router).drop_copy("r1", "a")
    assert dropped.events == source_count
    assert scan(router.services["a"], "r1", Streams()).ids == set()
    before = restaurant_digest(b, streams.ids)
    back = RestaurantMove(router).move("r1", "a")
    assert (back.events, back.digest) == before
    assert restaurant_digest(router.services["a"], streams.ids) == before
    assert router.get_booking("r1", "w0-0").booking_id == "w0-0"
    assert MapStore(router.settings).version() == 3


def test_shards_must_name_known_shards(sharded: Settings) -> None:
    with pytest.raises(ValueError, match="name no shard"):
        Settings(shards=dict(sharded.shards), shard_default="c")
    single = shard_settings(sharded, "b")
    assert (single.shards, single.persistence) == ({}, "postgres")
    assert Settings().shards == {}  # no shard settings: one store, as always


def test_the_command_line_runs_every_shard_or_one(
    sharded: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEATLEDGER_SHARDS", json.dumps(sharded.shards))
    monkeypatch.setenv("SEATLEDGER_SHARD_CONTROL", "a")
    with ShardedService(sharded) as router:  # in_process: the read models are current
        router.create_restaurant(floor("r1"))
        router.register_booking(booking("b1", restaurant_id="r1"))
        router.assign_tables(assign("b1", "M1", restaurant_id="r1"))
    capsys.readouterr()
    assert main(["migrate"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("shard")] == [
        f"shard {name}: {shard_settings(sharded, name).describe_store()}" for name in ("a", "b")
    ]
    assert main(["worker", "--once"]) == 0
    assert main(["worker", "--once", "--shard", "b"]) == 0
    capsys.readouterr()
    assert main(["relay", "--once", "--shard", "a"]) == 0
    assert json.loads(capsys.readouterr().out)["published"] == 1
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert sorted(status["shards"]) == ["a", "b"] and status["healthy"]
    assert status["shards"]["a"]["outbox"]["capacity.assignment.sync"]["done"] == 1
    assert main(["shards", "move", "r1", "--to", "b"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert (moved["source"], moved["target"], moved["map_version"]) == ("a", "b", 2)
    assert moved["messages_carried"] == 1
    assert main(["shards", "finish", "r1"]) == 0  # nothing left to finish
    assert json.loads(capsys.readouterr().out)["messages_released"] == 0
    assert main(["shards", "drop-copy", "r1", "--shard", "a"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == moved["events"]
    assert main(["shards", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["assignments"]) == (
        2,
        {"r1": "b", "r2": "b"},
    )  # seeded by the router
    assert main(["status", "--shard", "nope"]) == 2
    with ShardedService(sharded) as router:  # the delivered message stays delivered on b
        router.catch_up_projections()
        assert outbox_ids(router, "b", "r1") != []


def outbox_states(router: ShardedService, shard: str) -> dict[str, tuple[Any, ...]]:
    with router.services[shard].read_models.read() as tx:
        rows = tx.execute(
            "SELECT message_id, status, next_attempt_at FROM seatledger_outbox"
            " WHERE restaurant_id = 'r1'"
        )
    return {str(row[0]): tuple(row[1:]) for row in rows}


def test_a_move_that_fails_before_its_switch_leaves_the_source_as_it_was_and_after_it_is_finished(
    router: ShardedService, monkeypatch: pytest.MonkeyPatch
) -> None:
    router.create_restaurant(floor("r1"))
    router.register_booking(booking("b1", restaurant_id="r1"))
    router.assign_tables(assign("b1", "M1", restaurant_id="r1"))
    router.catch_up_projections()
    before = outbox_states(router, "a")
    assert {state for state, _ in before.values()} == {"pending"}

    def refuse(*args: object) -> ShardMap:
        raise psycopg.OperationalError("the control shard went away")

    move = RestaurantMove(router)
    monkeypatch.setattr(move.store, "publish", refuse)
    with pytest.raises(psycopg.OperationalError):
        move.move("r1", "b")
    assert router.shard_of("r1") == "a" and router.fences["a"].state("r1") == "open"
    assert outbox_states(router, "a") == before  # its messages handed back, none sent
    router.register_booking(booking("b2", restaurant_id="r1"))  # the source serves again
    monkeypatch.undo()
    # the target's partial copy must be dropped before another move; here, after the switch
    with psycopg.connect(router.shard_settings["b"].postgres_conninfo()) as conn:
        schema = router.shard_settings["b"].postgres_schema
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    router.close()
    with ShardedService(router.settings) as fresh:
        move = RestaurantMove(fresh)
        monkeypatch.setattr(move, "finish", lambda restaurant_id: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            move.move("r1", "b")
        monkeypatch.undo()
        assert fresh.shard_of("r1") == "b"  # switched: the target is current
        assert {state for state, _ in outbox_states(fresh, "b").values()} == {"pending"}
        assert all(until is not None for _, until in outbox_states(fresh, "b").values())
        assert RestaurantMove(fresh).finish("r1") == len(before)
        assert all(until is None for _, until in outbox_states(fresh, "b").values())
        assert fresh.fences["a"].state("r1") == "moved"
        assert fresh.get_booking("r1", "b2").booking_id == "b2"


def test_a_message_parked_while_the_move_finishes_is_released(router: ShardedService) -> None:
    """The parking trigger and the move's last step cannot miss each other: a message whose
    insert is under way when ``finish`` releases the parked ones is released too (``finish``
    waits for it), never left parked for good."""
    restaurant_id = next(f"p{n}" for n in range(100) if router.shard_of(f"p{n}") == "b")
    router.create_restaurant(floor(restaurant_id))
    router.register_booking(booking("b1", restaurant_id=restaurant_id))
    router.assign_tables(assign("b1", "M1", restaurant_id=restaurant_id))
    router.catch_up_projections()
    settings = router.shard_settings["b"]
    schema = settings.postgres_schema
    outbox = sql.Identifier(schema, "seatledger_outbox")
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("INSERT INTO {} (restaurant_id, source) VALUES (%s, 'a')").format(
                sql.Identifier(schema, INCOMING)
            ),
            (restaurant_id,),
        )
        columns = [
            str(row[0])
            for row in admin.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'seatledger_outbox'"
                " ORDER BY ordinal_position",
                (schema,),
            )
        ]
        fresh = {"message_id": "md5(random()::text)::uuid", "seq": "seq + 100"}  # a new row
        copied = sql.SQL(", ").join(
            sql.SQL(fresh[c]) if c in fresh else sql.Identifier(c) for c in columns
        )
        with psycopg.connect(settings.postgres_conninfo()) as inserting:  # its transaction open
            inserting.execute(
                sql.SQL(
                    "INSERT INTO {} ({}) SELECT {} FROM {} WHERE restaurant_id = %s LIMIT 1"
                ).format(outbox, sql.SQL(", ").join(map(sql.Identifier, columns)), copied, outbox),
                (restaurant_id,),
            )
            finished: list[int] = []
            finishing = threading.Thread(
                target=lambda: finished.append(RestaurantMove(router).finish(restaurant_id))
            )
            finishing.start()
            waiting = False
            while finishing.is_alive() and not waiting:  # finish must wait for the insert
                waiting = bool(
                    admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE 'DELETE FROM %%' AND query LIKE %s",
                        (f"%{INCOMING}%",),
                    ).fetchone()[0]  # type: ignore[index]
                )
            inserting.commit()
        finishing.join()
        parked = admin.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE restaurant_id = %s AND last_error = %s").format(
                outbox
            ),
            (restaurant_id, PARKED),
        ).fetchone()
    assert waiting and finished == [1]
    assert parked is not None and parked[0] == 0
