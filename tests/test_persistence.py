"""The event store, on memory, SQLite and PostgreSQL: what is stored, how it reads back, what a
re-opened service sees, old event versions, re-sent commands and storage failures."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import (
    IntegrityError,
    MapperDeserialisationError,
    Notification,
    PersistenceError,
    Recording,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder
from psycopg import sql
from pydantic import BaseModel

from seatledger.application.clock import ManualClock
from seatledger.application.commands import (
    AssignTables,
    CancelBooking,
    ChangePolicy,
    CompleteBooking,
    ConfirmHold,
    DefineTable,
    ExpireHolds,
    ExtendHold,
    LinkTables,
    MarkNoShow,
    ReleaseHold,
    UnassignTables,
    UnlinkTables,
)
from seatledger.application.errors import InfrastructureCode
from seatledger.application.mapper import PydanticMapper, event_registry
from seatledger.application.results import AssignmentResult, HoldView
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.directory import BookingFiled, HoldFiled, hold_index_id
from seatledger.domain.errors import ErrorCode, PolicyDriftError, SeatLedgerError
from seatledger.domain.layout import (
    PolicyChanged,
    RestaurantCreated,
    Table,
    TableDefined,
    TablesLinked,
    TablesUnlinked,
    ZoneDefined,
)
from seatledger.domain.ledger import CommandRecorded
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    BookingClosed,
    BookingRegistered,
    HoldConfirmed,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PolicyDriftDetected,
    ServiceDayOpened,
    TablesAssigned,
    TablesUnassigned,
    day_id,
    derive_hold_id,
)
from seatledger.domain.values import digest
from tests.support import DAY, SUMMER_DAY, booking, floor, hold

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ALL = 1_000_000  # a page size larger than any log these tests write

R = TypeVar("R")


class RecordingService(AssignmentService):
    """An ``AssignmentService`` that keeps every recording (the domain event as the service
    created it, with its notification), through the library's post-save hook."""

    def __init__(self, settings: Settings, *, clock: ManualClock) -> None:
        super().__init__(settings, clock=clock)
        self.recordings: list[Recording[UUID]] = []

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        self.recordings.extend(recordings)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def recording_service(settings: Settings, clock: ManualClock) -> Iterator[RecordingService]:
    svc = RecordingService(settings, clock=clock)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def timed_service(settings: Settings, clock: ManualClock) -> Iterator[AssignmentService]:
    svc = AssignmentService(settings, clock=clock)
    try:
        yield svc
    finally:
        svc.close()


def notifications(service: AssignmentService) -> Sequence[Notification]:
    return service.recorder.select_notifications(start=None, limit=ALL)


def max_id(service: AssignmentService) -> int:
    return service.recorder.max_notification_id() or 0


def error_of(call: Callable[[], object]) -> SeatLedgerError:
    with pytest.raises(SeatLedgerError) as caught:
        call()
    return caught.value


def reopen(service: AssignmentService, settings: Settings, clock: ManualClock) -> AssignmentService:
    """A new service on the same storage. Memory storage dies with its service, so there the
    new service gets a copy of every stored event, in log order (the same replay)."""
    fresh = AssignmentService(settings, clock=clock)
    if settings.persistence == "memory":
        assert isinstance(fresh.recorder, POPOApplicationRecorder)
        fresh.recorder.insert_events(
            [
                StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
                for n in notifications(service)
            ]
        )
        fresh.catch_up_projections()  # its read models died with it too: rebuild them
    return fresh


# --- (a) round trip -------------------------------------------------------------------------


def drive_a_service_day(service: AssignmentService, clock: ManualClock) -> dict[str, str]:
    """A realistic afternoon: layout changes, bookings, holds, confirms, manual assignments,
    unassignments, a cancellation, a drift rejection, an expiry sweep, an extension, a
    release, closing bookings and a policy change. Returns the ids of some holds."""

    def run(command: Any) -> Any:
        return service.execute(command)

    run(floor())
    run(DefineTable(restaurant_id="r1", table=Table(table_id="M9", zone_id="main", capacity=2)))
    run(LinkTables(restaurant_id="r1", edges=[("M6", "M9")]))
    run(UnlinkTables(restaurant_id="r1", edges=[("M9", "M6")]))
    for command in (
        booking("b1"),
        booking("b2", party_size=4),
        booking("b3", start="19:30"),
        booking("b4", start="20:00"),
        booking("b5", party_size=6, start="18:00"),
        booking("b6", start="12:30"),
        booking("s1", service_date=SUMMER_DAY),
    ):
        run(command)

    # hold then confirm; a replaced hold; a merged two-table confirm
    first = run(hold("b1", "M1"))
    run(ConfirmHold(restaurant_id="r1", booking_id="b1", hold_id=first.hold_id))
    pair = run(hold("b2", "M2", "M3"))
    moved = run(hold("b2", "M3", "M4", replaces_hold_id=pair.hold_id))
    merged = run(
        ConfirmHold(
            restaurant_id="r1", booking_id="b2", hold_id=moved.hold_id, idempotency_key="k-b2"
        )
    )
    assert merged.merge_group_id is not None

    # manual assignment, partial and full unassignment, cancellation of an assigned booking
    run(AssignTables(restaurant_id="r1", booking_id="b5", table_ids=["M8"], actor_id="host-2"))
    run(UnassignTables(restaurant_id="r1", booking_id="b2", table_ids=["M4"]))
    run(UnassignTables(restaurant_id="r1", booking_id="b2"))
    run(AssignTables(restaurant_id="r1", booking_id="b3", table_ids=["P5"]))
    run(CancelBooking(restaurant_id="r1", booking_id="b3"))

    # a drift rejection is recorded
    stale = run(hold("b4", "B1"))
    run(DefineTable(restaurant_id="r1", table=Table(table_id="B1", zone_id="bar", capacity=3)))
    with pytest.raises(PolicyDriftError) as drift:
        run(ConfirmHold(restaurant_id="r1", booking_id="b4", hold_id=stale.hold_id))
    assert drift.value.kind == "table"

    # the sweeper records an expiry
    short = run(hold("b6", "M6", ttl_seconds=60))
    clock.advance(timedelta(seconds=61))
    assert run(ExpireHolds(restaurant_id="r1", service_date=DAY)) == [short.hold_id]

    # extend, then release, a hold on another day
    summer = run(hold("s1", "P1", actor_id="host-3"))
    clock.advance(timedelta(seconds=30))
    extended = run(
        ExtendHold(restaurant_id="r1", hold_id=summer.hold_id, ttl_seconds=600, actor_id="host-3")
    )
    assert extended.extended
    released = run(ReleaseHold(restaurant_id="r1", hold_id=summer.hold_id, actor_id="host-3"))
    assert released.released

    run(CompleteBooking(restaurant_id="r1", booking_id="b1"))
    run(MarkNoShow(restaurant_id="r1", booking_id="b5"))
    run(ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=3)))
    return {"b2": moved.hold_id, "b4": stale.hold_id, "b6": short.hold_id}


EXPECTED_EVENT_TYPES: set[type[DomainEvent]] = {
    RestaurantCreated,
    ZoneDefined,
    TableDefined,
    TablesLinked,
    TablesUnlinked,
    PolicyChanged,
    ServiceDayOpened,
    BookingRegistered,
    BookingFiled,
    HoldPlaced,
    HoldFiled,
    HoldConfirmed,
    HoldReleased,
    HoldExtended,
    HoldExpired,
    TablesAssigned,
    TablesUnassigned,
    BookingClosed,
    PolicyDriftDetected,
    CommandRecorded,
}


def test_every_stored_event_reads_back_equal_and_re_encodes_to_identical_bytes(
    recording_service: RecordingService, clock: ManualClock
) -> None:
    drive_a_service_day(recording_service, clock)
    stored = notifications(recording_service)
    originals = {r.notification.id: r.domain_event for r in recording_service.recordings}

    # every event the service saved is in the log, and nothing else is
    assert sorted(originals) == [n.id for n in stored]
    assert {type(event) for event in originals.values()} == EXPECTED_EVENT_TYPES

    mapper = recording_service.mapper
    for notification in stored:
        original = originals[notification.id]
        assert isinstance(original, DomainEvent)
        decoded = mapper.to_domain_event(notification)
        assert type(decoded) is type(original)
        assert decoded == original, notification.topic
        # canonical serialisation: one state, however the event came to be
        assert mapper.to_stored_event(decoded).state == notification.state
        assert mapper.to_stored_event(original).state == notification.state
        assert json.loads(notification.state)["command_id"] == original.command_id


def test_topics_are_the_stable_names_never_module_paths(
    recording_service: RecordingService, clock: ManualClock
) -> None:
    drive_a_service_day(recording_service, clock)
    registry = event_registry()
    for notification in notifications(recording_service):
        event_class = registry[notification.topic]
        assert notification.topic == event_class.TOPIC
        assert notification.topic.startswith("seatledger.")
        assert ":" not in notification.topic
        assert event_class.__module__ not in notification.topic
    # a registry built from the aggregates knows every stable topic, and only those
    assert all(topic == cls.TOPIC for topic, cls in registry.items())


def test_a_reopened_service_replays_to_the_same_state(
    settings: Settings, timed_service: AssignmentService, clock: ManualClock
) -> None:
    holds = drive_a_service_day(timed_service, clock)
    before = {
        "restaurant": timed_service.get_restaurant("r1"),
        "day": timed_service.get_day("r1", DAY),
        "summer": timed_service.get_day("r1", SUMMER_DAY),
    }
    day_before = timed_service.load_day("r1", DAY)
    assert day_before is not None
    last = max_id(timed_service)

    reopened = reopen(timed_service, settings, clock)
    try:
        after = {
            "restaurant": reopened.get_restaurant("r1"),
            "day": reopened.get_day("r1", DAY),
            "summer": reopened.get_day("r1", SUMMER_DAY),
        }
        assert after == before
        day_after = reopened.load_day("r1", DAY)
        assert day_after is not None
        for attribute in (
            "version",
            "bookings",
            "holds",
            "idempotency",
            "seen_commands",
            "command_changes",
            "command_drifts",
        ):
            assert getattr(day_after, attribute) == getattr(day_before, attribute), attribute
        # what a replay rebuilt is live state: the caller's key still answers idempotently
        replay = reopened.confirm_hold(
            ConfirmHold(
                restaurant_id="r1",
                booking_id="b2",
                hold_id=holds["b2"],
                idempotency_key="k-b2",
            )
        )
        assert replay.replayed
        # a new command (a key replay): it wrote its ledger entry only
        (recorded,) = reopened.recorder.select_notifications(start=last + 1, limit=10)
        assert recorded.topic == CommandRecorded.TOPIC
    finally:
        reopened.close()


def test_a_command_resent_to_a_reopened_service_is_a_replay(
    settings: Settings, timed_service: AssignmentService, clock: ManualClock
) -> None:
    timed_service.execute(floor())
    timed_service.execute(booking("b1"))
    placed = timed_service.place_hold(hold("b1", "M1"))
    confirm = ConfirmHold(restaurant_id="r1", booking_id="b1", hold_id=placed.hold_id)
    first = timed_service.confirm_hold(confirm)
    last = max_id(timed_service)

    reopened = reopen(timed_service, settings, clock)
    try:
        again = reopened.confirm_hold(confirm)
        assert again.replayed
        assert same_result(first, again)
        assert max_id(reopened) == last
    finally:
        reopened.close()


def test_a_subclass_of_the_service_opens_the_same_store(
    settings: Settings, clock: ManualClock
) -> None:
    """The library names tables after the application class (PostgreSQL: ``<name>_events``);
    a subclass (a hook, an adapter) must still read and write seatledger's store."""
    assert RecordingService.name == AssignmentService.name
    with RecordingService(settings, clock=clock) as hooked:
        hooked.execute(floor())
        plain = reopen(hooked, settings, clock)
        try:
            assert plain.get_restaurant("r1").restaurant_id == "r1"
        finally:
            plain.close()


# --- (b) upcasting a stored version-1 HoldPlaced ------------------------------------------


def write_v1_hold(service: AssignmentService, booking_id: str, table_id: str) -> str:
    """Append a hold exactly as version 1 of ``HoldPlaced`` stored it (no ``table_facts``, no
    ``adjacency_required``, no ``class_version``), with its directory entry, the way the
    service files a hold: the day event and the ``HoldFiled`` in one insert."""
    day = service.load_day("r1", DAY)
    assert day is not None
    restaurant = service.get_restaurant("r1")
    window = service.get_booking("r1", booking_id).window
    now = service.clock.now()
    command_id = "legacy-place-hold"
    hold_id = derive_hold_id(day.id, command_id)
    v1_state = {
        "timestamp": now.isoformat(),
        "command_id": command_id,
        "actor_id": "host-legacy",
        "hold_id": hold_id,
        "booking_id": booking_id,
        "tables": [table_id],
        "zone_id": "main",
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "expires_at": (now + timedelta(seconds=180)).isoformat(),
        "source": "manual",
        "replaces_hold_id": None,
        "policy_version": restaurant.policy_version,
        "zone_ids": ["main"],
        "adjacency": {"edges": [], "hash": digest([])},
        "relaxations": [],
    }
    filed = HoldFiled(
        originator_id=hold_index_id(hold_id),
        originator_version=1,
        timestamp=now,
        command_id=command_id,
        actor_id="host-legacy",
        hold_id=hold_id,
        restaurant_id="r1",
        service_date=DAY,
        booking_id=booking_id,
    )
    service.recorder.insert_events(
        [
            StoredEvent(
                originator_id=day_id("r1", DAY),
                originator_version=day.version + 1,
                topic="seatledger.assignments.HoldPlaced",
                state=json.dumps(v1_state).encode(),
            ),
            service.mapper.to_stored_event(filed),
        ]
    )
    return hold_id


def test_a_version_1_hold_is_upcast_and_cannot_be_confirmed(
    timed_service: AssignmentService,
) -> None:
    service = timed_service
    service.execute(floor())
    service.execute(booking("legacy"))
    hold_id = write_v1_hold(service, "legacy", "M1")
    last = max_id(service)

    (stored,) = service.recorder.select_notifications(
        start=None, limit=ALL, topics=[HoldPlaced.TOPIC]
    )
    assert "class_version" not in json.loads(stored.state)
    event = service.mapper.to_domain_event(stored)
    assert isinstance(event, HoldPlaced)
    assert event.hold_id == hold_id
    assert event.tables == ("M1",)
    assert event.table_facts is None
    assert event.adjacency_required is None
    assert event.policy_version == service.get_restaurant("r1").policy_version
    # written back today it would be a version 3 event; the stored row is left as it was
    assert json.loads(service.mapper.to_stored_event(event).state)["class_version"] == 3

    view = service.get_hold("r1", hold_id)
    assert view.status == "live"
    assert view.adjacency_required is None

    err = error_of(
        lambda: service.confirm_hold(
            ConfirmHold(restaurant_id="r1", booking_id="legacy", hold_id=hold_id)
        )
    )
    assert err.code == ErrorCode.HOLD_METADATA_INCOMPLETE
    assert err.details["missing"] == ["table_facts", "adjacency_required"]
    assert err.details["hold_id"] == hold_id
    assert max_id(service) == last
    assert service.get_booking("r1", "legacy").status == "pending"


# --- (c) unknown topics and corrupt states ---------------------------------------------------


def test_an_unknown_topic_is_a_mapper_deserialisation_error() -> None:
    mapper = PydanticMapper()
    stored = StoredEvent(uuid4(), 1, "seatledger.assignments.TableTeleported", b"{}")
    with pytest.raises(
        MapperDeserialisationError, match=re.escape("seatledger.assignments.TableTeleported")
    ):
        mapper.to_domain_event(stored)


def test_a_module_path_topic_is_unknown() -> None:
    """Only the stable names are registered: the library's default topic of a class is not."""
    stored = StoredEvent(uuid4(), 1, "domain.assignments:HoldPlaced", b"{}")
    with pytest.raises(
        MapperDeserialisationError, match=re.escape("domain.assignments:HoldPlaced")
    ):
        PydanticMapper().to_domain_event(stored)


@pytest.mark.parametrize(
    "state",
    [b"not json", b'{"timestamp": "yesterday"}', b"[]"],
    ids=["not-json", "invalid-fields", "not-an-object"],
)
def test_a_corrupt_state_is_a_mapper_deserialisation_error(state: bytes) -> None:
    stored = StoredEvent(uuid4(), 3, BookingRegistered.TOPIC, state)
    with pytest.raises(MapperDeserialisationError, match=re.escape(BookingRegistered.TOPIC)):
        PydanticMapper().to_domain_event(stored)


def test_an_unknown_topic_in_the_store_fails_reads_with_a_typed_error(
    timed_service: AssignmentService,
) -> None:
    service = timed_service
    service.execute(floor())
    service.execute(booking("b1"))
    day = service.load_day("r1", DAY)
    assert day is not None
    service.recorder.insert_events(
        [StoredEvent(day.id, day.version + 1, "seatledger.assignments.TableTeleported", b"{}")]
    )
    err = error_of(lambda: service.get_day("r1", DAY))
    assert err.code == InfrastructureCode.INTERNAL_ERROR
    assert "seatledger.assignments.TableTeleported" in err.details["error"]


# --- (d) a command re-sent after a lost reply ------------------------------------------------


def same_result(first: BaseModel, again: BaseModel) -> bool:
    """Equal apart from the flags that say whether this call wrote anything."""
    flags = {"changed", "replayed"}
    return first.model_dump(exclude=flags) == again.model_dump(exclude=flags)


def resend(service: AssignmentService, command: Any) -> tuple[Any, Any]:
    """Run a command, then the same command object again (same command id)."""
    first = service.execute(command)
    last = max_id(service)
    again = service.execute(command)
    assert max_id(service) == last, f"re-sent {type(command).__name__} wrote events"
    return first, again


def test_a_resent_command_returns_the_original_result_and_writes_nothing(
    timed_service: AssignmentService,
) -> None:
    service = timed_service
    service.execute(floor())

    first, again = resend(service, booking("b1", party_size=4))
    assert again == first
    service.execute(booking("b2"))

    placed, placed_again = resend(service, hold("b1", "M1", "M2"))
    assert isinstance(placed_again, HoldView)
    assert placed_again == placed

    confirmed, confirmed_again = resend(
        service, ConfirmHold(restaurant_id="r1", booking_id="b1", hold_id=placed.hold_id)
    )
    assert confirmed.changed and not confirmed.replayed
    assert confirmed_again.replayed and not confirmed_again.changed
    assert same_result(confirmed, confirmed_again)

    assigned, assigned_again = resend(
        service, AssignTables(restaurant_id="r1", booking_id="b2", table_ids=["P5"])
    )
    assert assigned_again.replayed
    assert same_result(assigned, assigned_again)

    unassigned, unassigned_again = resend(
        service, UnassignTables(restaurant_id="r1", booking_id="b1", table_ids=["M2"])
    )
    assert unassigned.table_ids == ["M1"]
    assert unassigned_again.replayed
    assert same_result(unassigned, unassigned_again)

    # a re-sent cancel also survives later changes of other bookings
    cancel = CancelBooking(restaurant_id="r1", booking_id="b2")
    cancelled = service.cancel_booking(cancel)
    service.execute(booking("b3"))
    last = max_id(service)
    cancelled_again = service.cancel_booking(cancel)
    assert max_id(service) == last
    assert cancelled.status == cancelled_again.status == "cancelled"
    assert cancelled_again.replayed
    assert same_result(cancelled, cancelled_again)

    assert service.get_booking("r1", "b1").table_ids == ["M1"]
    assert service.get_booking("r1", "b2").table_ids == []


class LostReplyError(IntegrityError):
    """What the library raises when a retried insert finds that its first try committed."""


CommandCase = tuple[str, Callable[[str], Any]]
LOST_REPLY_CASES: list[CommandCase] = [
    ("register_booking", lambda _: booking("b9")),
    ("place_hold", lambda _: hold("b2", "M3")),
    (
        "confirm_hold",
        lambda hold_id: ConfirmHold(restaurant_id="r1", booking_id="b1", hold_id=hold_id),
    ),
    (
        "assign_tables",
        lambda _: AssignTables(restaurant_id="r1", booking_id="b2", table_ids=["P5"]),
    ),
    ("unassign_tables", lambda _: UnassignTables(restaurant_id="r1", booking_id="b3")),
    ("cancel_booking", lambda _: CancelBooking(restaurant_id="r1", booking_id="b3")),
]


@pytest.mark.parametrize("case", LOST_REPLY_CASES, ids=[name for name, _ in LOST_REPLY_CASES])
def test_a_commit_whose_reply_was_lost_is_not_written_twice(
    timed_service: AssignmentService, monkeypatch: pytest.MonkeyPatch, case: CommandCase
) -> None:
    """The insert commits, then the library reports ``IntegrityError`` (eventsourcing-notes
    12: a retried insert after a lost reply). The service re-runs the command on fresh state,
    finds its own command id, and returns the original result without writing again."""
    service = timed_service
    service.execute(floor())
    service.execute(booking("b1", party_size=4))
    service.execute(booking("b2"))
    service.execute(booking("b3"))
    service.execute(AssignTables(restaurant_id="r1", booking_id="b3", table_ids=["B1"]))
    placed = service.place_hold(hold("b1", "M1", "M2"))
    _, make = case
    command = make(placed.hold_id)

    insert = service.recorder.insert_events
    lost: list[int] = []

    def insert_then_lose_the_reply(events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        ids = insert(events, **kwargs)
        if not lost:
            lost.append(len(events))
            raise LostReplyError("duplicate key value violates unique constraint")
        return ids

    monkeypatch.setattr(service.recorder, "insert_events", insert_then_lose_the_reply)
    before = max_id(service)
    result = service.execute(command)
    assert lost, "the command wrote nothing"
    assert max_id(service) == before + lost[0]
    if isinstance(result, AssignmentResult):
        assert result.replayed
    monkeypatch.undo()

    last = max_id(service)
    again = service.execute(command)
    assert max_id(service) == last
    assert same_result(result, again)


# --- (e) storage failures are typed errors ---------------------------------------------------


@pytest.mark.postgres
def test_a_dropped_postgres_schema_is_storage_unavailable(postgres_schema: str) -> None:
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    with AssignmentService(settings, clock=ManualClock(START)) as service:
        service.execute(floor())
        service.execute(booking("b1"))
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(postgres_schema)))
        for call in (
            lambda: service.register_booking(booking("b2")),
            lambda: service.get_day("r1", DAY),
        ):
            err = error_of(call)
            assert err.code == InfrastructureCode.STORAGE_UNAVAILABLE
            assert isinstance(err.__cause__, PersistenceError)
            assert "does not exist" in err.details["error"]


def unwritable_sqlite_paths(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    return {
        "parent-is-a-file": a_file / "seatledger.db",
        "path-is-a-directory": tmp_path,
        "read-only-filesystem": Path("/proc/seatledger.db"),
    }


@pytest.mark.parametrize(
    "which", ["parent-is-a-file", "path-is-a-directory", "read-only-filesystem"]
)
def test_an_unwritable_sqlite_path_fails_at_construction(tmp_path: Path, which: str) -> None:
    """Decision: the service opens its store when it is constructed, so a store it cannot
    open is reported there, once, as ``STORAGE_UNAVAILABLE`` naming the path (not as a bare
    ``OSError``/library error, and not deferred to the first command, which would turn a
    deployment mistake into failures of unrelated requests)."""
    path = unwritable_sqlite_paths(tmp_path)[which]
    err = error_of(lambda: AssignmentService(Settings(persistence="sqlite", sqlite_path=path)))
    assert err.code == InfrastructureCode.STORAGE_UNAVAILABLE
    assert err.details["persistence"] == "sqlite"
    assert str(path) in err.message


def test_an_unreachable_postgres_server_fails_at_construction() -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        settings = Settings(persistence="postgres", postgres_port=port, postgres_connect_timeout=2)
        err = error_of(lambda: AssignmentService(settings))
    assert err.code == InfrastructureCode.STORAGE_UNAVAILABLE
    assert err.details["persistence"] == "postgres"
    assert isinstance(err.__cause__, psycopg.Error | PersistenceError)
