"""Day events name their day, so projecting them reads nothing else; events stored before
they did still load and project, through a look-up of the day's first event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from seatledger.application.mapper import PydanticMapper
from seatledger.application.service import AssignmentService
from seatledger.application.telemetry import Telemetry
from seatledger.domain.service_day import DayEvent, TablesAssigned, day_id
from seatledger.domain.service_day.events import DAY_EVENTS
from seatledger.projections.db import ReadModelDB, SQLiteReadModels
from seatledger.projections.members import MembersProjection, all_members, booking_members
from seatledger.projections.migrations import migrate
from seatledger.projections.outbox import SYNC, OutboxProjection, all_outbox
from seatledger.projections.projection import DayInfo
from seatledger.projections.runner import PageRunner
from seatledger.projections.source import EventSource
from tests.support import DAY, assign, booking, confirm, floor, hold, unassign

ALL = 1_000_000


class CountingSource(EventSource):
    """Counts the reads of a service day's first event (the fallback look-up)."""

    def __init__(self, service: AssignmentService) -> None:
        super().__init__(service.recorder, service.mapper)
        self.lookups: list[UUID] = []

    def read_day(self, originator_id: UUID) -> DayInfo:
        self.lookups.append(originator_id)
        return super().read_day(originator_id)


@pytest.fixture
def fresh_read_models() -> Iterator[ReadModelDB]:
    with SQLiteReadModels(":memory:") as db:
        migrate(db)
        yield db


def project_afresh(service: AssignmentService, db: ReadModelDB) -> CountingSource:
    """Both projections rebuilt from the service's log into ``db``."""
    source = CountingSource(service)
    for projection in (MembersProjection(), OutboxProjection()):
        PageRunner(db, projection, source, Telemetry()).catch_up()
    return source


def write_v1_assignment(service: AssignmentService, booking_id: str, table_id: str) -> None:
    """Append a manual assignment exactly as version 1 of ``TablesAssigned`` stored it: no
    ``restaurant_id``, no ``service_date``, no ``class_version``."""
    day = service.load_day("r1", DAY)
    assert day is not None
    window = service.get_booking("r1", booking_id).window
    v1_state = {
        "timestamp": "2026-11-24T12:00:00+00:00",
        "command_id": "legacy-assign",
        "actor_id": "host-legacy",
        "replace": False,
        "change": {
            "booking_id": booking_id,
            "requested": [table_id],
            "tables": [table_id],
            "added": [table_id],
            "removed": [],
            "members": [{"table_id": table_id, "assignment_id": "legacy-assignment"}],
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            "zone_id": "main",
            "merge_group_id": None,
            "status": "confirmed",
            "idempotency_key": None,
            "key_derived": False,
            "hold_id": None,
            "source": "manual",
        },
    }
    service.recorder.insert_events(
        [
            StoredEvent(
                originator_id=day_id("r1", DAY),
                originator_version=day.version + 1,
                topic=TablesAssigned.TOPIC,
                state=json.dumps(v1_state).encode(),
            )
        ]
    )


def test_every_day_event_upcast_from_version_1_has_its_day_unknown() -> None:
    for event_class in DAY_EVENTS:
        if not issubclass(event_class, DayEvent):
            continue  # ServiceDayOpened named its day from the start
        state: dict[str, Any] = {}
        for version in range(1, event_class.class_version):
            getattr(event_class, f"upcast_v{version}_v{version + 1}")(state)
        assert state["restaurant_id"] is None and state["service_date"] is None, event_class


def test_new_day_events_name_their_day_and_project_without_a_look_up(
    service: AssignmentService, fresh_read_models: ReadModelDB
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 4, "18:00"))
    service.register_booking(booking("b2", 2, "20:00"))
    placed = service.place_hold(hold("b1", "M1", "M2"))
    service.confirm_hold(confirm("b1", placed.hold_id))
    service.assign_tables(assign("b2", "M3"))
    service.unassign_tables(unassign("b1", "M2"))

    for notification in service.recorder.select_notifications(start=None, limit=ALL):
        event = service.mapper.to_domain_event(notification)
        if isinstance(event, DayEvent):
            assert (event.restaurant_id, event.service_date) == ("r1", DAY)

    source = project_afresh(service, fresh_read_models)
    assert source.lookups == []
    service.catch_up_projections()
    assert all_members(fresh_read_models) == all_members(service.read_models)
    assert all_outbox(fresh_read_models) == all_outbox(service.read_models)
    assert len(all_outbox(fresh_read_models)) == 4  # 3 syncs and a hold confirmation


def test_an_old_day_event_without_its_day_loads_and_projects(
    service: AssignmentService, fresh_read_models: ReadModelDB
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1"))
    service.register_booking(booking("b2"))
    write_v1_assignment(service, "b1", "M1")
    service.assign_tables(assign("b2", "M3"))  # a new event after the old one

    (stored, _) = service.recorder.select_notifications(
        start=None, limit=ALL, topics=[TablesAssigned.TOPIC]
    )
    assert "restaurant_id" not in json.loads(stored.state)
    old = PydanticMapper().to_domain_event(stored)
    assert isinstance(old, TablesAssigned)
    assert (old.restaurant_id, old.service_date) == (None, None)

    day = service.load_day("r1", DAY)
    assert day is not None and day.booking("b1").tables == ("M1",)

    service.catch_up_projections()
    (member,) = booking_members(service.read_models, "r1", "b1")
    assert (member.restaurant_id, member.table_id, member.assignment_id, member.service_date) == (
        "r1",
        "M1",
        "legacy-assignment",
        DAY.isoformat(),
    )
    sync = next(
        json.loads(row[8])
        for row in all_outbox(service.read_models)
        if row[3] == SYNC and json.loads(row[8])["bookingId"] == "b1"
    )
    assert (sync["restaurantId"], sync["serviceDate"]) == ("r1", DAY.isoformat())

    # only the old event needs the look-up: one read, shared by both projections
    source = project_afresh(service, fresh_read_models)
    assert source.lookups == [day.id]
    assert all_members(fresh_read_models) == all_members(service.read_models)
    assert all_outbox(fresh_read_models) == all_outbox(service.read_models)
