"""The demo day: it must stay free of double bookings, show rejections and drift, seat most
parties by auto-assign, leave a read side that matches what the commands returned, be
reproducible from its seed, and only ever delete its own database."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seatledger.application.demo import (
    RESTAURANT_ID,
    SERVICE_DATE,
    DemoConfig,
    DemoDatabaseError,
    DemoReport,
    find_double_bookings,
    is_demo_database,
    prepare_database,
    run_demo,
)
from seatledger.application.results import BookingView
from seatledger.domain.values import Window

SMALL = DemoConfig(lunch_bookings=15, dinner_bookings=30, walk_ins=4, late_requests=1)

#: Every code the demo provokes on purpose; anything else would be a surprise worth a look.
EXPECTED_CODES = {
    "ASSIGNMENT_CONFLICT",
    "CAPACITY_INSUFFICIENT",
    "HOLD_CONFLICT",
    "HOLD_EXPIRED",
    "IDEMPOTENCY_MISMATCH",
    "POLICY_DRIFT",
    "POLICY_REQUOTE_FAILED",
    "SERVICE_OVERRUN",
}


def without_seconds(report: DemoReport) -> dict[str, object]:
    return report.model_dump(exclude={"seconds"})


def stored_events(path: Path) -> list[tuple[str, int, str, bytes]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY originator_id, originator_version"
        ).fetchall()
    conn.close()
    return [(str(a), int(b), str(c), bytes(d)) for a, b, c, d in rows]


def assert_read_side_matches(report: DemoReport) -> None:
    """Once the projections caught up, the outbox and the members read model show exactly
    what the commands the demo sent did (docs/domain.md §10 and §11)."""
    assert report.sync_messages == report.table_set_changing_commands
    assert report.hold_confirmed_messages == report.holds_confirmed
    # one recovered=false message per drift (manual confirm or auto-assign run), one
    # recovered=true per auto-assign that succeeded after its drift
    assert report.drift_messages == (
        sum(report.drift_by_kind.values()) + report.auto_assign.drift_recovered
    )
    assert report.members_rows == report.assigned_at_close
    assert report.members_with_empty_id == 0


def assert_auto_assign_adds_up(report: DemoReport) -> None:
    auto = report.auto_assign
    assert auto.attempted == (
        auto.succeeded
        + auto.replayed
        + auto.already_assigned
        + auto.no_candidate
        + sum(auto.failed_by_code.values())
    )
    assert auto.no_candidate == sum(auto.no_candidate_by_reason.values())
    assert set(auto.no_candidate_by_reason) <= {
        "NO_CAPACITY",
        "NO_TABLES_AVAILABLE",
        "HOLD_CONFLICTS",
    }
    drift_failures = ("POLICY_DRIFT", "POLICY_REQUOTE_FAILED")
    assert auto.drift_failed == sum(auto.failed_by_code.get(c, 0) for c in drift_failures)
    for code, count in auto.failed_by_code.items():
        assert report.rejected_by_code[code] >= count
    # every drift is a rejection, except those auto-assign recovered from
    rejected_for_drift = sum(report.rejected_by_code.get(c, 0) for c in drift_failures)
    assert sum(report.drift_by_kind.values()) == rejected_for_drift + auto.drift_recovered
    assert auto.holds_left_after_failure == 0
    # most bookings that got tables got them from auto-assign
    seated = sum(report.seated_by_source.values())
    assert report.seated_by_source.get("auto", 0) > 0.6 * seated
    assert auto.succeeded <= report.holds_confirmed


@pytest.fixture(scope="module")
def full_day(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    """The real default day (seed 42), run once for the module."""
    return run_demo(tmp_path_factory.mktemp("demo") / "demo.db")


@pytest.fixture(scope="module")
def small_day(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    return run_demo(tmp_path_factory.mktemp("demo") / "small.db", seed=11, config=SMALL)


def test_default_day_is_busy_and_never_double_books(full_day: DemoReport) -> None:
    report = full_day
    assert report.double_bookings == 0
    assert report.double_booking_scans > 10
    assert report.bookings >= 200
    assert report.tables >= 30
    assert report.zones >= 3
    assert report.succeeded + report.rejected == report.commands
    assert sum(report.rejected_by_code.values()) == report.rejected
    assert report.rejected_by_code
    assert set(report.rejected_by_code) <= EXPECTED_CODES
    assert set(report.drift_by_kind) == {"policy", "table", "adjacency"}
    assert report.holds_expired > 0
    assert report.rejected_by_code.get("HOLD_EXPIRED", 0) > 0
    assert report.replays > 0
    assert report.moves > 0
    assert report.unassigns > 0
    assert report.final_status.get("confirmed", 0) > 0  # the final scan has something to check
    assert sum(report.final_status.values()) == report.bookings


def test_default_day_seats_most_parties_by_auto_assign(full_day: DemoReport) -> None:
    report = full_day
    auto = report.auto_assign
    assert_auto_assign_adds_up(report)
    assert auto.early_quotes > 0
    assert auto.drift_recovered > 0  # a manager's change between quote and confirm
    assert auto.drift_failed > 0  # ... on a terminal with drift retry switched off
    assert auto.replayed > 0  # the same auto-assign re-sent after a timeout
    assert auto.no_candidate_by_reason.get("NO_CAPACITY", 0) > 0  # the coach party
    assert auto.no_candidate_by_reason.get("NO_TABLES_AVAILABLE", 0) > 0  # a full service
    # the hosts still do some of it by hand
    assert report.seated_by_source.get("hold", 0) > 0
    assert report.seated_by_source.get("manual", 0) > 0


def test_default_day_read_side_matches_the_commands(full_day: DemoReport) -> None:
    assert_read_side_matches(full_day)
    assert full_day.sync_messages > full_day.holds_confirmed > 0
    assert full_day.drift_messages > 0
    assert full_day.members_rows > 0
    # results_with_empty_id is reported, not asserted: it is 0 when the in-process
    # projections keep up with every command, which depends on the machine
    assert full_day.results_with_empty_id >= 0


def test_small_day_adds_up_too(small_day: DemoReport) -> None:
    assert small_day.double_bookings == 0
    assert small_day.auto_assign.attempted > 0
    assert_read_side_matches(small_day)
    assert_auto_assign_adds_up(small_day)


def test_report_is_one_sorted_json_object(full_day: DemoReport) -> None:
    text = full_day.to_json()
    assert "\n" not in text
    assert text.index('"bookings"') < text.index('"commands"') < text.index('"seconds"')


def test_same_seed_same_day(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "a.db", seed=7, config=SMALL)
    second = run_demo(tmp_path / "b.db", seed=7, config=SMALL)
    assert without_seconds(first) == without_seconds(second)
    # deterministic command ids and a manual clock: even the event logs are identical
    assert stored_events(tmp_path / "a.db") == stored_events(tmp_path / "b.db")


def test_different_seed_different_day(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "a.db", seed=1, config=SMALL)
    second = run_demo(tmp_path / "b.db", seed=2, config=SMALL)
    assert without_seconds(first) != without_seconds(second)
    assert first.double_bookings == second.double_bookings == 0


def view(booking_id: str, tables: list[str], start: str, end: str) -> BookingView:
    window = Window(start=datetime.fromisoformat(start), end=datetime.fromisoformat(end))
    return BookingView(
        restaurant_id=RESTAURANT_ID,
        booking_id=booking_id,
        service_date=SERVICE_DATE,
        party_size=2,
        start_at=window.start,
        window=window,
        service="dinner",
        fallback=False,
        clamped=False,
        status="confirmed",
        table_ids=tables,
        zone_id="main",
        merge_group_id=None,
    )


def test_scanner_finds_two_bookings_on_one_table() -> None:
    found = find_double_bookings(
        [
            view("b2", ["M1", "M2"], "2026-11-24T19:00:00+00:00", "2026-11-24T20:05:00+00:00"),
            view("b1", ["M2"], "2026-11-24T20:00:00+00:00", "2026-11-24T21:05:00+00:00"),
            view("b3", ["M3"], "2026-11-24T19:00:00+00:00", "2026-11-24T21:05:00+00:00"),
        ]
    )
    assert found == [("b1", "b2")]


def test_scanner_counts_a_pair_once_even_on_several_tables() -> None:
    found = find_double_bookings(
        [
            view("a", ["M1", "M2"], "2026-11-24T19:00:00+00:00", "2026-11-24T20:00:00+00:00"),
            view("b", ["M1", "M2"], "2026-11-24T19:30:00+00:00", "2026-11-24T20:30:00+00:00"),
        ]
    )
    assert found == [("a", "b")]


def test_scanner_accepts_touching_windows_and_other_tables() -> None:
    start = datetime(2026, 11, 24, 19, tzinfo=UTC)
    touching = (start + timedelta(hours=1)).isoformat()
    found = find_double_bookings(
        [
            view("a", ["M1"], start.isoformat(), touching),
            view("b", ["M1"], touching, (start + timedelta(hours=2)).isoformat()),
            view("c", ["M2"], start.isoformat(), touching),
            view("d", [], start.isoformat(), touching),
        ]
    )
    assert found == []


def test_rerun_replaces_its_own_database(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    run_demo(path, seed=3, config=SMALL)
    assert is_demo_database(path)
    again = run_demo(path, seed=3, config=SMALL)
    assert again.double_bookings == 0
    assert again.bookings == len(stored_bookings(path))


def stored_bookings(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT topic FROM stored_events WHERE topic LIKE '%BookingRegistered%'"
        ).fetchall()
    conn.close()
    return [str(row[0]) for row in rows]


def test_refuses_a_file_that_is_not_a_demo_database(tmp_path: Path) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("not yours")
    with pytest.raises(DemoDatabaseError, match="not a seatledger demo database"):
        run_demo(path, config=SMALL)
    assert path.read_text() == "not yours"


def test_refuses_another_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE stored_events (originator_id TEXT)")
        conn.execute("INSERT INTO stored_events VALUES ('someone-else')")
    conn.close()
    assert not is_demo_database(path)
    with pytest.raises(DemoDatabaseError):
        prepare_database(path)
    assert path.exists()


def test_overwrite_deletes_any_file(tmp_path: Path) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("not yours")
    report = run_demo(path, seed=5, config=SMALL, overwrite=True)
    assert report.double_bookings == 0
    assert is_demo_database(path)


def test_refuses_a_directory_even_with_overwrite(tmp_path: Path) -> None:
    with pytest.raises(DemoDatabaseError, match="directory"):
        prepare_database(tmp_path, overwrite=True)


def test_prepare_removes_wal_and_shm_siblings(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    run_demo(path, seed=4, config=SMALL)
    siblings = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    for sibling in siblings:
        sibling.write_bytes(b"stale")
    prepare_database(path)
    assert not path.exists()
    assert not any(sibling.exists() for sibling in siblings)


def test_missing_file_is_not_a_demo_database(tmp_path: Path) -> None:
    assert not is_demo_database(tmp_path / "nothing.db")
    prepare_database(tmp_path / "nothing.db")  # nothing to delete, nothing refused
