"""The projections read every event that records a table-set change, derived from the event
classes: a new change event is projected without a topic list to update."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar
from uuid import uuid4

import pytest

from seatledger.domain.service_day import (
    BookingClosed,
    ChangeEvent,
    DayEvent,
    HoldConfirmed,
    SeatedTable,
    TableChange,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.domain.service_day.events import DAY_EVENTS
from seatledger.domain.values import Window
from seatledger.projections.db import ReadModelDB, SQLiteReadModels
from seatledger.projections.members import MembersProjection, all_members
from seatledger.projections.migrations import migrate
from seatledger.projections.outbox import SYNC, OutboxProjection, all_outbox
from seatledger.projections.projection import (
    CHANGE_TOPICS,
    DayInfo,
    Projected,
    change_events,
    change_field,
    table_change,
)
from tests.support import DAY

START = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
END = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


class SeatsSwapped(DayEvent):
    """A change event the service does not have (yet), under a field name of its own."""

    TOPIC: ClassVar[str] = "tests.SeatsSwapped"

    swap: TableChange


class MaybeMoved(DayEvent):
    TOPIC: ClassVar[str] = "tests.MaybeMoved"

    moved: TableChange | None


class Noted(DayEvent):
    TOPIC: ClassVar[str] = "tests.Noted"

    note: str


class TwoChanges(DayEvent):
    TOPIC: ClassVar[str] = "tests.TwoChanges"

    before: TableChange
    after: TableChange


def a_change(booking_id: str = "b1") -> TableChange:
    return TableChange(
        booking_id=booking_id,
        requested=("T2", "T1"),
        tables=("T1", "T2"),
        added=("T1", "T2"),
        removed=(),
        members=(
            SeatedTable(table_id="T1", assignment_id="a1"),
            SeatedTable(table_id="T2", assignment_id="a2"),
        ),
        window=Window(start=START, end=END),
        zone_id="main",
        merge_group_id="g1",
        status="confirmed",
        idempotency_key=None,
        source="manual",
    )


def test_the_change_topics_are_todays_four_and_every_change_event_subclass() -> None:
    assert set(CHANGE_TOPICS) == {
        TablesAssigned.TOPIC,
        HoldConfirmed.TOPIC,
        TablesUnassigned.TOPIC,
        BookingClosed.TOPIC,
    }
    subclasses = {cls for cls in DAY_EVENTS if issubclass(cls, ChangeEvent)}
    assert {cls.TOPIC for cls in subclasses} <= set(CHANGE_TOPICS)


def test_every_day_event_carrying_a_change_is_read_by_both_projections() -> None:
    for event_class in DAY_EVENTS:
        if change_field(event_class) is None:
            assert event_class.TOPIC not in MembersProjection.topics
        else:
            assert event_class.TOPIC in MembersProjection.topics
            assert event_class.TOPIC in OutboxProjection.topics


def test_a_new_change_event_is_derived_from_its_fields() -> None:
    derived = change_events((*DAY_EVENTS, SeatsSwapped, MaybeMoved, Noted))
    assert derived == (*change_events(DAY_EVENTS), SeatsSwapped, MaybeMoved)
    assert change_field(SeatsSwapped) == "swap"
    assert change_field(MaybeMoved) == "moved"
    assert change_field(Noted) is None


def test_an_event_with_two_changes_is_refused() -> None:
    with pytest.raises(TypeError, match="more than one change"):
        change_field(TwoChanges)


def stamp() -> dict[str, object]:
    return {
        "originator_id": uuid4(),
        "originator_version": 7,
        "timestamp": START,
        "command_id": "c1",
        "actor_id": "host-1",
        "restaurant_id": "r1",
        "service_date": DAY,
    }


@pytest.fixture
def read_models() -> Iterator[ReadModelDB]:
    with SQLiteReadModels(":memory:") as db:
        migrate(db)
        yield db


def test_a_new_change_event_is_projected_into_members_and_outbox(
    read_models: ReadModelDB,
) -> None:
    swapped = SeatsSwapped(**stamp(), swap=a_change("b1"))
    moved_nowhere = MaybeMoved(**stamp(), moved=None)
    noted = Noted(**stamp(), note="window seat")
    assert table_change(swapped) == swapped.swap
    assert table_change(moved_nowhere) is None and table_change(noted) is None

    day = DayInfo("r1", DAY)
    batch = [Projected(n, event, day) for n, event in enumerate((swapped, moved_nowhere, noted), 1)]
    with read_models.transaction() as tx:
        MembersProjection().apply(tx, batch)
        OutboxProjection().apply(tx, batch)

    members = all_members(read_models)
    assert [(row[0], row[1], row[2], row[3]) for row in members] == [
        ("r1", "b1", "T1", "a1"),
        ("r1", "b1", "T2", "a2"),
    ]
    ((_, notification_id, _, message_type, _, _, dedupe_key, _, payload, traceparent),) = (
        all_outbox(read_models)
    )
    assert traceparent is None  # not traced
    assert (notification_id, message_type) == (1, SYNC)
    assert dedupe_key == "b1:2026-11-24T19:00:00Z:2026-11-24T21:00:00Z:T1,T2"
    assert json.loads(payload)["tableIds"] == ["T1", "T2"]
