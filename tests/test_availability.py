"""Table availability: database function first, bounded scan on a schema miss, the event
store when the read model itself is gone, and typed errors for everything else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from seatledger.application.commands import CancelBooking
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.values import Window
from seatledger.projections.availability import BLOCKERS_QUERY, is_schema_cache_miss_error
from seatledger.projections.migrations import MIGRATIONS
from tests.support import assign, booking, floor


def window(start: str, end: str) -> Window:
    return Window(
        start=datetime.fromisoformat(f"2026-11-24T{start}:00+00:00"),
        end=datetime.fromisoformat(f"2026-11-24T{end}:00+00:00"),
    )


def seed(service: AssignmentService) -> None:
    """b1 holds M1 during [19:00, 20:20); b2 was cancelled after taking M2."""
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 2, "19:00"))
    service.register_booking(booking("b2", 2, "19:00"))
    service.assign_tables(assign("b1", "M1"))
    service.assign_tables(assign("b2", "M2"))
    service.cancel_booking(CancelBooking(restaurant_id="r1", booking_id="b2"))


def test_answers_follow_half_open_windows(service: AssignmentService) -> None:
    seed(service)
    expected_path = "function" if service.settings.persistence == "postgres" else "scan"
    busy = service.table_availability("r1", "M1", window("20:00", "21:00"))
    assert not busy.available
    assert busy.path == expected_path
    # every path names the blocking booking (the function used to answer only yes/no)
    assert busy.blocking_booking_ids == ["b1"]
    assert service.is_table_available("r1", "M1", window("20:20", "21:00"))  # touching
    assert service.is_table_available("r1", "M1", window("17:00", "19:00"))  # touching
    assert service.is_table_available("r1", "M1", window("19:30", "19:45"), "b1")  # excluded
    assert service.is_table_available("r1", "M2", window("19:00", "20:00"))  # cancelled frees
    assert service.is_table_available("r1", "M3", window("19:00", "20:00"))


@pytest.fixture
def pg_service(postgres_schema: str) -> Iterator[tuple[AssignmentService, RecordingSink]]:
    sink = RecordingSink()
    settings = Settings(
        persistence="postgres",
        postgres_schema=postgres_schema,
        projection_mode="in_process",
        availability_statement_timeout_ms=200,
    )
    with AssignmentService(settings, telemetry=Telemetry(sinks=[sink])) as service:
        seed(service)
        yield service, sink


def admin(service: AssignmentService) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        service.settings.postgres_conninfo(),
        autocommit=True,
        options=f"-c search_path={service.settings.postgres_schema}",
    )


@pytest.mark.postgres
def test_schema_misses_fall_back_per_call(
    pg_service: tuple[AssignmentService, RecordingSink],
) -> None:
    service, sink = pg_service
    w = window("19:30", "20:00")
    assert service.table_availability("r1", "M1", w).path == "function"

    with admin(service) as conn:
        conn.execute("DROP FUNCTION seatledger_table_blockers")
    scan = service.table_availability("r1", "M1", w)
    assert (scan.available, scan.path, scan.blocking_booking_ids) == (False, "scan", ["b1"])
    (fallback,) = sink.named("availability.fallback")
    assert fallback.fields["sqlstate"] == "42883"
    assert fallback.fields["failed_path"] == "function"

    with admin(service) as conn:
        conn.execute("DROP TABLE seatledger_members")
    sink.clear()
    from_events = service.table_availability("r1", "M1", w)
    assert (from_events.available, from_events.path) == (False, "event_store")
    assert from_events.blocking_booking_ids == ["b1"]
    assert service.table_availability("r1", "M2", w).available  # cancelled booking ignored
    assert [r.fields["sqlstate"] for r in sink.named("availability.fallback")][:2] == [
        "42883",
        "42P01",
    ]

    # not sticky: once the objects are back, the very next call uses the function again
    with admin(service) as conn:
        for statement in MIGRATIONS[0].postgres[1:3] + MIGRATIONS[3].postgres:
            conn.execute(statement)
    service.catch_up_projections()
    assert service.table_availability("r1", "M1", w).path == "function"


@pytest.mark.postgres
def test_every_path_gives_the_same_answer_on_the_same_data(
    pg_service: tuple[AssignmentService, RecordingSink],
) -> None:
    """The function, the scan and the event store answer alike, blockers included (the
    function used to say available=False with no blockers)."""
    service, _ = pg_service
    service.register_booking(booking("b3", 2, "21:00"))
    service.register_booking(booking("b4", 4, "19:00"))
    service.assign_tables(assign("b3", "M1"))
    service.assign_tables(assign("b4", "M5", "M6"))
    questions = [
        ("M1", window("18:00", "23:00"), None),
        ("M1", window("18:00", "23:00"), "b1"),
        ("M1", window("19:30", "20:00"), None),
        ("M1", window("20:20", "21:00"), None),
        ("M2", window("19:00", "20:00"), None),
        ("M5", window("19:00", "19:01"), None),
        ("M6", window("19:00", "19:01"), "b4"),
    ]

    def answers() -> list[tuple[bool, list[str]]]:
        found = [service.table_availability("r1", *question) for question in questions]
        assert len({answer.path for answer in found}) == 1
        return [(answer.available, answer.blocking_booking_ids) for answer in found]

    expected = [
        (False, ["b1", "b3"]),
        (False, ["b3"]),
        (False, ["b1"]),
        (True, []),
        (True, []),
        (False, ["b4"]),
        (True, []),
    ]
    assert service.table_availability("r1", "M1", window("18:00", "23:00")).path == "function"
    assert answers() == expected
    with admin(service) as conn:
        conn.execute("DROP FUNCTION seatledger_table_blockers")
    assert service.table_availability("r1", "M1", window("18:00", "23:00")).path == "scan"
    assert answers() == expected
    with admin(service) as conn:
        conn.execute("DROP TABLE seatledger_members")
    assert service.table_availability("r1", "M1", window("18:00", "23:00")).path == "event_store"
    assert answers() == expected


@pytest.mark.postgres
def test_statement_timeout_is_a_typed_error(
    pg_service: tuple[AssignmentService, RecordingSink],
) -> None:
    service, sink = pg_service
    with admin(service) as locker, locker.transaction():
        locker.execute("LOCK TABLE seatledger_members IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(SeatLedgerError) as caught:
            service.table_availability("r1", "M1", window("19:30", "20:00"))
    error = caught.value
    assert error.code == ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED
    assert error.details["sqlstate"] == "57014"  # query_canceled by statement_timeout
    assert error.details["path"] == "function"
    assert sink.named("availability.fallback") == []  # not a schema miss: no fallback
    assert service.is_table_available("r1", "M3", window("19:30", "20:00"))  # next call fine


@pytest.mark.postgres
def test_schema_miss_classification_on_real_server_errors(postgres_schema: str) -> None:
    conninfo = Settings().postgres_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        errors = {}
        for name, statement in {
            "function": "SELECT seatledger_no_such_function()",
            "table": "SELECT * FROM seatledger_no_such_table",
            "timeout": "SET statement_timeout = 10; SELECT pg_sleep(1)",
            "syntax": "SELEC 1",
            "division": "SELECT 1 / 0",
        }.items():
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                errors[name] = exc
            conn.execute("SET statement_timeout = 0")
    assert is_schema_cache_miss_error(errors["function"])
    assert is_schema_cache_miss_error(errors["table"])
    assert not is_schema_cache_miss_error(errors["timeout"])
    assert not is_schema_cache_miss_error(errors["syntax"])
    assert not is_schema_cache_miss_error(errors["division"])


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": "PGRST202", "message": "Could not find the function"}, True),
        ({"code": "PGRST205", "message": "Could not find the table"}, True),
        ({"code": "PGRST116", "message": "JSON object requested, multiple rows"}, False),
        (RuntimeError("Could not find the function in the schema cache"), True),
        (RuntimeError("function seatledger_x(text) does not exist"), True),
        (RuntimeError('relation "seatledger_members" does not exist'), True),
        (RuntimeError("column x does not exist"), False),
        (RuntimeError("connection refused"), False),
        (RuntimeError("no such table: seatledger_members"), True),
    ],
)
def test_schema_miss_classification(error: object, expected: bool) -> None:
    assert is_schema_cache_miss_error(error) is expected


def test_classification_follows_the_exception_chain() -> None:
    try:
        try:
            raise RuntimeError('relation "seatledger_members" does not exist')
        except RuntimeError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert is_schema_cache_miss_error(outer)


def test_sqlite_missing_read_model_answers_from_events(tmp_path: Path) -> None:
    sink = RecordingSink()
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "s.db")
    with AssignmentService(settings, telemetry=Telemetry(sinks=[sink])) as service:
        seed(service)
        with service.read_models.transaction() as tx:
            tx.execute("DROP TABLE seatledger_members")
        answer = service.table_availability("r1", "M1", window("19:30", "20:00"))
        assert (answer.available, answer.path, answer.blocking_booking_ids) == (
            False,
            "event_store",
            ["b1"],
        )
        assert sink.named("availability.fallback")[0].fields["failed_path"] == "scan"


#: A deep history: 200 days x 20 tables x 5 bookings of one restaurant, one row each.
_HISTORY = """
INSERT INTO seatledger_members
SELECT 'r1', 'h-' || d || '-' || t || '-' || k, 'T' || t, 'a-' || d || '-' || t || '-' || k,
       DATE '2020-01-01' + d,
       TIMESTAMPTZ '2020-01-01 11:00+00' + d * INTERVAL '1 day' + k * INTERVAL '2 hours',
       TIMESTAMPTZ '2020-01-01 12:40+00' + d * INTERVAL '1 day' + k * INTERVAL '2 hours',
       NULL, NULL, 'staff', 1
FROM generate_series(0, 199) d, generate_series(0, 19) t, generate_series(0, 4) k
"""


@pytest.mark.postgres
@pytest.mark.parametrize("plans", ["force_generic_plan", "force_custom_plan"])
def test_the_function_path_plans_on_the_overlap_index(
    pg_service: tuple[AssignmentService, RecordingSink], plans: str
) -> None:
    """Flat in history: the statement the service sends looks rows up by (restaurant, table,
    window overlap) on the GiST index, in a generic plan (what a prepared statement or a SQL
    function's body gets, whatever the window) as in a custom one. Timing is the bench's."""
    service, _ = pg_service
    positional = BLOCKERS_QUERY
    for number, name in enumerate(("restaurant_id", "table_id", "start_at", "end_at", "exclude")):
        positional = positional.replace(f":{name}", f"${number + 1}")
    with admin(service) as conn:
        conn.execute(_HISTORY)
        conn.execute("ANALYZE seatledger_members")
        conn.execute(f"SET plan_cache_mode = {plans}")
        conn.execute(f"PREPARE blockers (text, text, text, text, text) AS {positional}")
        for day in ("2020-01-02", "2020-07-01"):  # early in history (the old plan's worst)
            rows = conn.execute(
                f"EXPLAIN EXECUTE blockers('r1', 'T3', '{day}T12:00:00Z', '{day}T13:00:00Z', NULL)"
            ).fetchall()
            plan = "\n".join(str(row[0]) for row in rows)
            assert "seatledger_members_overlap" in plan, plan
        found = conn.execute(
            "EXECUTE blockers('r1', 'T3', '2020-01-02T12:40:00Z', '2020-01-02T13:01:00Z', NULL)"
        ).fetchall()
    assert found == [("h-1-3-1",)]  # half-open: the window ending 12:40 does not block
