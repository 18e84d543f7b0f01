"""Layout, policy and booking registration through the service (docs/domain.md §3, §4, §16).

Every layout change is an event; a change that changes nothing writes nothing; windows are
fixed at registration. Runs on every backend.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from seatledger.application.commands import (
    ChangePolicy,
    CreateRestaurant,
    DefineTable,
    DefineZone,
    LinkTables,
    RegisterBooking,
    UnlinkTables,
)
from seatledger.application.errors import http_status
from seatledger.application.service import AssignmentService
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode
from seatledger.domain.layout import (
    PolicyChanged,
    RestaurantCreated,
    Table,
    TableDefined,
    TablesLinked,
    TablesUnlinked,
    Zone,
    ZoneDefined,
)
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import BookingRegistered, ServiceDayOpened
from seatledger.domain.values import Window
from tests.support import DAY, SUMMER_DAY, assign, booking, floor, position


def test_create_restaurant_records_the_whole_floor(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    view = s.when(floor()).result
    events = s.then_events(
        RestaurantCreated, ZoneDefined, ZoneDefined, ZoneDefined, *[TableDefined] * 15, TablesLinked
    )
    assert isinstance(events[-1], TablesLinked)
    assert len(events[-1].edges) == 8
    assert [t.table_id for t in view.tables] == sorted(t.table_id for t in view.tables)
    assert view.policy_version == VenuePolicy().version
    assert ("M1", "M2") in view.adjacency


def test_creating_a_restaurant_twice_is_restaurant_exists(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    err = s.when(floor()).then_error(ErrorCode.RESTAURANT_EXISTS, restaurant_id="r1")
    assert http_status(err) == 409


def test_resending_the_same_create_command_returns_the_restaurant(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario
    create = floor()
    first = s.when(create).result
    again = s.when(create).result
    s.then_nothing_written()
    assert again == first


def test_unknown_restaurant_is_restaurant_not_found(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    s.when(booking("b1", restaurant_id="nowhere"))
    s.then_error(ErrorCode.RESTAURANT_NOT_FOUND, restaurant_id="nowhere")
    s.when(lambda: s.service.get_restaurant("nowhere"))
    s.then_error(ErrorCode.RESTAURANT_NOT_FOUND, restaurant_id="nowhere")
    s.when(DefineZone(restaurant_id="nowhere", zone=Zone(zone_id="z")))
    s.then_error(ErrorCode.RESTAURANT_NOT_FOUND)


def test_a_table_in_an_undefined_zone_is_zone_not_found(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    s.when(
        DefineTable(restaurant_id="r1", table=Table(table_id="T9", zone_id="terrace", capacity=2))
    )
    s.then_error(ErrorCode.ZONE_NOT_FOUND, zone_id="terrace", restaurant_id="r1")
    s.when(DefineZone(restaurant_id="r1", zone=Zone(zone_id="terrace")))
    s.then_events(ZoneDefined)
    s.when(
        DefineTable(restaurant_id="r1", table=Table(table_id="T9", zone_id="terrace", capacity=2))
    )
    s.then_events(TableDefined)


def test_a_restaurant_created_with_a_table_in_an_unknown_zone_writes_nothing(
    service: AssignmentService,
) -> None:
    with Scenario(service) as s:
        bad = CreateRestaurant(
            restaurant_id="r1", tables=[Table(table_id="T1", zone_id="ghost", capacity=2)]
        )
        s.when(bad).then_error(ErrorCode.ZONE_NOT_FOUND, zone_id="ghost")
        assert position(service) == 0
        s.when(lambda: service.get_restaurant("r1"))
        s.then_error(ErrorCode.RESTAURANT_NOT_FOUND)


def test_layout_commands_that_change_nothing_write_nothing(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    m1 = Table(table_id="M1", zone_id="main", capacity=2, movable=True)
    s.when(DefineTable(restaurant_id="r1", table=m1)).then_no_events()
    s.when(LinkTables(restaurant_id="r1", edges=[("M2", "M1")])).then_no_events()
    s.when(UnlinkTables(restaurant_id="r1", edges=[("M1", "M3")])).then_no_events()
    s.when(ChangePolicy(restaurant_id="r1", policy=VenuePolicy())).then_no_events()
    s.when(DefineZone(restaurant_id="r1", zone=Zone(zone_id="main", name="Main room")))
    s.then_no_events()


def test_link_and_unlink_record_undirected_edges(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    s.when(LinkTables(restaurant_id="r1", edges=[("M3", "M1"), ("M1", "M3"), ("P4", "P1")]))
    (linked,) = s.then_events(TablesLinked)
    assert isinstance(linked, TablesLinked)
    assert linked.edges == (("M1", "M3"), ("P1", "P4"))
    s.when(UnlinkTables(restaurant_id="r1", edges=[("M3", "M1"), ("M5", "M6")]))
    s.then_events((TablesUnlinked, {"edges": (("M1", "M3"), ("M5", "M6"))}))
    assert ("M1", "M3") not in s.service.get_restaurant("r1").adjacency


def test_linking_across_zones_unknown_tables_or_a_loop_is_rejected(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario
    s.given(floor())
    s.when(LinkTables(restaurant_id="r1", edges=[("M6", "P1")]))
    s.then_error(ErrorCode.ZONE_MISMATCH, edges=[["M6", "P1"]])
    s.when(LinkTables(restaurant_id="r1", edges=[("M6", "Z9")]))
    s.then_error(ErrorCode.TABLE_NOT_FOUND, tables=["Z9"])
    err = s.when(LinkTables(restaurant_id="r1", edges=[("M1", "M1")])).then_error(
        ErrorCode.INVALID_INPUT
    )
    assert err.details["errors"][0]["field"] == "edges"


def test_moving_a_table_to_another_zone_drops_its_edges(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    moved = Table(table_id="M2", zone_id="patio", capacity=2, movable=True)
    s.when(DefineTable(restaurant_id="r1", table=moved))
    s.then_events(
        (TablesUnlinked, {"edges": (("M1", "M2"), ("M2", "M3"))}),
        (TableDefined, {"table": moved}),
    )
    view = s.service.get_restaurant("r1")
    assert not [e for e in view.adjacency if "M2" in e]
    assert ("M3", "M4") in view.adjacency


def test_a_policy_change_is_an_event_with_both_versions(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    before = s.service.get_restaurant("r1").policy_version
    # model_copy of a policy whose version was already computed (regression: it kept the
    # cached version, and the change was silently dropped as a no-op)
    current = s.service.get_restaurant("r1").policy
    assert current.version == before
    tighter = current.model_copy(update={"post_buffer_minutes": 10})
    s.when(ChangePolicy(restaurant_id="r1", policy=tighter))
    (event,) = s.then_events(PolicyChanged)
    assert isinstance(event, PolicyChanged)
    assert event.previous_version == before
    assert event.policy.version == tighter.version != before
    assert s.service.get_restaurant("r1").policy_version == tighter.version


# --- registration: windows come from the policy and are fixed ---------------------------------


def test_registering_a_booking_fixes_its_block_window(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    view = s.when(booking("b1", party_size=4, start="19:00")).result
    s.then_events(ServiceDayOpened, BookingRegistered)
    assert view.window == Window(
        start=datetime(2026, 11, 24, 19, 0, tzinfo=UTC),
        end=datetime(2026, 11, 24, 20, 20, tzinfo=UTC),
    )
    assert (view.service, view.fallback, view.clamped, view.status) == (
        "dinner",
        False,
        False,
        "pending",
    )
    s.when(booking("b2"))
    s.then_events(BookingRegistered)  # the day is open already


def test_a_summer_booking_is_stored_in_utc(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    view = s.when(booking("b1", service_date=SUMMER_DAY)).result
    assert view.start_at == datetime(2026, 5, 15, 18, 0, tzinfo=UTC)
    assert view.window.start == datetime(2026, 5, 15, 18, 0, tzinfo=UTC)


def test_service_overrun_and_clamp_through_the_service(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    clamped = s.when(booking("late", start="21:50")).result
    assert clamped.clamped
    assert clamped.window.end == datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    err = s.when(booking("too-late", start="21:56")).then_error(
        ErrorCode.SERVICE_OVERRUN, service="dinner", service_end="22:00", start_time="21:56"
    )
    assert http_status(err) == 422
    s.when(lambda: s.service.get_booking("r1", "too-late"))
    s.then_error(ErrorCode.BOOKING_NOT_FOUND)


def test_service_not_found_through_the_service(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor(), floor("strict", policy=VenuePolicy(strict_services=True)))
    s.when(booking("b1", service="brunch")).then_error(
        ErrorCode.SERVICE_NOT_FOUND, service="brunch", services=["lunch", "dinner"]
    )
    s.when(booking("b2", start="10:00", restaurant_id="strict"))
    s.then_error(ErrorCode.SERVICE_NOT_FOUND, start_time="10:00")
    fallback = s.when(booking("b3", start="10:00")).result
    assert fallback.fallback and fallback.service == "fallback"


def test_a_nonexistent_local_time_is_invalid_input_through_the_service(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario
    s.given(floor())
    s.when(booking("b1", start="01:30", service_date=date(2026, 3, 29)))
    err = s.then_error(ErrorCode.INVALID_INPUT)
    assert err.details["errors"][0]["field"] == "start_time"


def test_reregistering_identically_is_safe_and_differently_is_booking_exists(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario
    s.given(floor(), booking("b1", party_size=2))
    again = s.when(booking("b1", party_size=2)).result
    s.then_no_events()
    assert again.party_size == 2
    s.when(booking("b1", party_size=3)).then_error(
        ErrorCode.BOOKING_EXISTS, booking_id="b1", party_size=2
    )
    s.when(booking("b1", service_date=date(2026, 11, 25))).then_error(
        ErrorCode.BOOKING_EXISTS, booking_id="b1", service_date=DAY.isoformat()
    )


def test_a_policy_change_does_not_move_existing_windows(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor(), booking("before"))
    old_window = s.service.get_booking("r1", "before").window
    s.given(
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(post_buffer_minutes=30)),
        booking("after"),
    )
    assert s.service.get_booking("r1", "before").window == old_window
    after = s.service.get_booking("r1", "after").window
    assert after.start == old_window.start
    assert (after.end - old_window.end).total_seconds() == 25 * 60
    # and the old booking still assigns on its fixed window
    s.when(assign("before", "M1"))
    assert s.result.window == old_window


def test_a_deactivated_table_is_table_inactive(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(
        floor(),
        booking("b1"),
        DefineTable(
            restaurant_id="r1",
            table=Table(table_id="M1", zone_id="main", capacity=2, movable=True, active=False),
        ),
    )
    s.when(assign("b1", "M1", "M2")).then_error(ErrorCode.TABLE_INACTIVE, tables=["M1"])


def test_registration_is_local_wall_clock_time(service: AssignmentService) -> None:
    with Scenario(service) as s:
        s.given(floor())
        start = position(service)
        s.when(
            RegisterBooking(
                restaurant_id="r1",
                booking_id="b1",
                party_size=2,
                service_date=DAY,
                start_time=time(19, 0),
            )
        )
        assert s.result.start_at == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
        assert position(service) > start
