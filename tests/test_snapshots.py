"""Snapshots of service days: a day loaded from its snapshot is the day a full replay makes,
on every backend; stale snapshots are ignored; the notification log never holds one."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, cast, get_args

import pytest
from eventsourcing.persistence import StoredEvent
from pydantic import BaseModel

from seatledger.application.audit import Audit
from seatledger.application.clock import ManualClock
from seatledger.application.mapper import event_registry
from seatledger.application.schema import SQLITE_SNAPSHOTS_TABLE, StoreSchema, migrate_store
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.snapshots import StaleSnapshot, load_latest_snapshot
from seatledger.application.testing.day_spec import day_state
from seatledger.domain.layout import TableFacts
from seatledger.domain.packed import Codebook
from seatledger.domain.service_day import HoldExtended, ServiceDay, day_id
from seatledger.domain.service_day.snapshot import (
    PACKED,
    SNAPSHOT_TOPIC_PREFIX,
    DaySnapshot,
    snapshot_topic,
)
from seatledger.domain.service_day.state import (
    BookingState,
    HoldState,
    IdempotencyRecord,
    SeatedTable,
    TableChange,
)
from seatledger.domain.values import Frozen, Window
from tests.support import DAY
from tests.test_persistence import START, drive_a_service_day

INDEXES = (
    "booking_slots",
    "hold_slots",
    "booking_ordinals",
    "hold_ordinals",
    "holds_by_booking",
    "live_hold_ids",
)


def full_replay(service: AssignmentService, aggregate_id: Any) -> ServiceDay:
    day: Any = None
    for event in service.events.get(aggregate_id):
        day = cast(Any, event).mutate(day)
    assert isinstance(day, ServiceDay)
    return day


def assert_same_day(loaded: ServiceDay, replayed: ServiceDay) -> None:
    assert day_state(loaded) == day_state(replayed)
    for name in INDEXES:
        assert getattr(loaded, name) == getattr(replayed, name), name
    # the day's order (the scans' tie-breaks) survives the snapshot
    assert list(loaded.bookings) == list(replayed.bookings)
    assert list(loaded.holds) == list(replayed.holds)
    assert list(loaded.live_hold_ids) == list(replayed.live_hold_ids)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def snapshotting(settings: Settings) -> Settings:
    return settings.model_copy(update={"snapshot_interval": 3})


def test_a_day_from_its_snapshot_equals_a_full_replay(
    snapshotting: Settings, clock: ManualClock
) -> None:
    with AssignmentService(snapshotting, clock=clock) as service:
        drive_a_service_day(service, clock)
        the_day = day_id("r1", DAY)
        latest = full_replay(service, the_day)
        snapshot = load_latest_snapshot(service, the_day)
        assert isinstance(snapshot, DaySnapshot)
        assert 1 < snapshot.originator_version <= latest.version
        # every version from the first snapshot on loads through a snapshot
        for version in range(3, latest.version + 1):
            loaded: ServiceDay = service.repository.get(the_day, version=version)
            replayed: Any = None
            for event in service.events.get(the_day, lte=version):
                replayed = cast(Any, event).mutate(replayed)
            assert_same_day(loaded, replayed)
        if snapshotting.persistence != "memory":
            with AssignmentService(snapshotting, clock=clock) as reopened:
                day = reopened.load_day("r1", DAY)
                assert day is not None
                assert_same_day(day, latest)


def test_snapshots_stay_out_of_the_notification_log(
    snapshotting: Settings, clock: ManualClock
) -> None:
    with AssignmentService(snapshotting, clock=clock) as service:
        drive_a_service_day(service, clock)
        assert load_latest_snapshot(service, day_id("r1", DAY)) is not None
        notifications = service.recorder.select_notifications(start=1, limit=100_000)
        registry = event_registry()
        assert notifications and all(n.topic in registry for n in notifications)
        assert not any(n.topic.startswith(SNAPSHOT_TOPIC_PREFIX) for n in notifications)
        # the audit reads the log alone: its replay, digests and comparisons agree
        report = Audit(service).run()
        assert report.ok, report.model_dump_json(indent=1)


def test_a_snapshot_of_another_schema_version_is_ignored(clock: ManualClock) -> None:
    settings = Settings(persistence="memory", snapshot_interval=0)
    with AssignmentService(settings, clock=clock) as service:
        drive_a_service_day(service, clock)
        the_day = day_id("r1", DAY)
        latest = full_replay(service, the_day)
        assert service.snapshots is not None
        old_topic = f"{SNAPSHOT_TOPIC_PREFIX}.v0.0000000000000000"
        # never decoded: its state is not even JSON
        stale = StoredEvent(the_day, latest.version, old_topic, b"not a snapshot")
        service.snapshots.recorder.insert_events([stale])
        found = load_latest_snapshot(service, the_day)
        assert isinstance(found, StaleSnapshot) and found.topic == old_topic
        assert_same_day(service.repository.get(the_day, version=latest.version), latest)


def test_an_upcast_gives_snapshots_a_new_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot_topic()
    assert before == DaySnapshot.TOPIC
    monkeypatch.setattr(HoldExtended, "class_version", HoldExtended.class_version + 1)
    assert snapshot_topic() != before


def test_a_snapshot_is_taken_when_a_save_crosses_the_interval(clock: ManualClock) -> None:
    settings = Settings(persistence="memory", snapshot_interval=4)
    with AssignmentService(settings, clock=clock) as service:
        drive_a_service_day(service, clock)
        the_day = day_id("r1", DAY)
        assert service.snapshots is not None
        versions = [s.originator_version for s in service.snapshots.get(the_day)]
        day = full_replay(service, the_day)
        assert versions and versions == sorted(versions)
        # one per multiple of the interval crossed (a save of several events snapshots once,
        # at its last version)
        assert len(versions) == len({(v - 1) // 4 for v in versions})
        assert max(versions) > day.version - 4 * 3
        assert date(2026, 11, 24) == DAY


def test_the_interval_is_a_seatledger_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEATLEDGER_SNAPSHOT_INTERVAL", "7")
    settings = Settings(persistence="memory")
    assert settings.snapshot_interval == 7
    with AssignmentService(settings) as service:
        assert service.snapshot_interval == 7 and service.snapshots is not None


def test_migrate_creates_the_snapshot_table_of_an_older_store(tmp_path: Path) -> None:
    """A store migrated before snapshots has no snapshot table: it is not ready, and a
    migration (or a start with MIGRATE_ON_START) creates the table and nothing else."""
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "old.db")
    migrate_store(settings)
    with closing(sqlite3.connect(settings.sqlite_path)) as conn:
        conn.execute(f"DROP TABLE {SQLITE_SNAPSHOTS_TABLE}")
        conn.commit()
    assert not StoreSchema(settings).inspect().ready
    migrate_store(settings)
    assert StoreSchema(settings).inspect().ready
    with closing(sqlite3.connect(settings.sqlite_path)) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert SQLITE_SNAPSHOTS_TABLE in tables


def test_a_packed_snapshot_decodes_to_the_values_it_was_taken_from(
    snapshotting: Settings, clock: ManualClock
) -> None:
    """Packed and unpacked without validation, every value equals the day's own, field by
    field, and is a model pydantic would have built (copies, dumps and equality work)."""
    with AssignmentService(snapshotting, clock=clock) as service:
        drive_a_service_day(service, clock)
        day = full_replay(service, day_id("r1", DAY))
        taken = DaySnapshot.take(day)
        unpacked = DaySnapshot.unpack(taken.pack())
        assert unpacked == taken
        assert unpacked.command_drifts and unpacked.holds and unpacked.idempotency
        for before, after in zip(
            taken.bookings + taken.holds, unpacked.bookings + unpacked.holds, strict=True
        ):
            assert type(after) is type(before) and after.__dict__ == before.__dict__
            assert after.model_dump(mode="json") == before.model_dump(mode="json")
            assert type(after).model_validate(after.model_dump()) == after
            assert after.model_copy(update={"status": before.status}) == before
        # equal values are decoded once and shared
        windows = {id(booking.window) for booking in unpacked.bookings}
        assert len(windows) == len({booking.window for booking in unpacked.bookings})
        assert_same_day(unpacked.mutate(None), day)


def test_packing_keeps_instants_and_offsets_exactly() -> None:
    start = datetime(2026, 11, 24, 19, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    values = [
        Window(start=start, end=start + timedelta(hours=2)),
        TableFacts(capacity=4, zone_id="z1", movable=False, active=True),
    ]
    packer = Codebook(PACKED).packer()
    refs = [packer.ref(value) for value in values]
    pool = Codebook(PACKED).unpack(json.loads(json.dumps(packer.pool)))
    decoded = [pool[ref] for ref in refs]
    assert decoded == values
    assert decoded[0].start.utcoffset() == timedelta(0)  # Window keeps UTC instants


def test_the_snapshot_topic_names_the_packed_classes_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Packed values are not validated, so a field added to a packed class must make older
    snapshots stale: the topic hashes every packed class's fields."""
    before = snapshot_topic()
    fields = dict(SeatedTable.model_fields)
    fields["seat"] = fields["table_id"]
    monkeypatch.setattr(SeatedTable, "model_fields", fields)
    assert snapshot_topic() != before


def test_only_known_field_types_are_packed() -> None:
    class Odd(Frozen):
        amount: Decimal

    with pytest.raises(TypeError, match="no encoding"):
        Codebook([Odd])

    class Loose(BaseModel):
        name: str

    with pytest.raises(TypeError, match="only frozen"):
        Codebook([Loose])


def test_every_value_a_snapshot_holds_is_a_packed_class() -> None:
    """A model reachable from a packed class but not in PACKED could not be packed (the
    snapshot would fail): the list is closed under the fields' types."""

    def models_in(annotation: Any) -> set[type[BaseModel]]:
        found: set[type[BaseModel]] = set()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.add(annotation)
        for arg in get_args(annotation):
            found |= models_in(arg)
        return found

    reachable = {
        model
        for packed in PACKED
        for field in packed.model_fields.values()
        for model in models_in(field.annotation)
    }
    assert reachable <= set(PACKED)
    assert {BookingState, HoldState, IdempotencyRecord, TableChange} <= set(PACKED)
