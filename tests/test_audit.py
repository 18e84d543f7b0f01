"""The audit: live read models against the log, history invariants, tamper evidence. Every
injected divergence must be reported precisely: which table, which key, which position.
Every backend."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from seatledger.application.audit import Audit, Until
from seatledger.application.audit.digest import CheckpointError
from seatledger.application.audit.parallel import can_replay_in_parallel
from seatledger.application.audit.report import AuditReport, ReadModelReport
from seatledger.application.service import AssignmentService
from seatledger.domain.service_day import (
    HoldConfirmed,
    SeatedTable,
    TableChange,
    TablesAssigned,
)
from seatledger.projections.members import MembersProjection
from seatledger.projections.outbox import OUTBOX_COLUMNS, SYNC
from tests.audit_support import StoredLog, known_day, live_write, position_of
from tests.support import DAY, assign, booking, floor, hold


def audit(service: AssignmentService, until: Until | None = None) -> AuditReport:
    """The audit in one process and, where it can also run in several (PostgreSQL), in two
    worker processes: both must give the same report, but for its duration."""
    report = Audit(service, workers=1).run(until)
    if can_replay_in_parallel(service.recorder):
        parallel = Audit(service, workers=2).run(until)
        assert parallel.model_dump(exclude={"seconds"}) == report.model_dump(exclude={"seconds"})
    return report


def model(report: AuditReport, name: str) -> ReadModelReport:
    (found,) = [r for r in report.read_models if r.name == name]
    return found


def test_a_faithful_store_audits_ok(service: AssignmentService) -> None:
    known_day(service)
    report = audit(service)
    assert report.ok, report.model_dump_json(indent=1)
    last = service.recorder.max_notification_id()
    assert (report.events, report.last_position, report.log.last_position) == (last, last, last)
    members, outbox = model(report, "members"), model(report, "outbox")
    # the live read model's position: the last event it handles (commands end in ledger events)
    handled = service.recorder.select_notifications(1, 10_000, topics=MembersProjection.topics)
    assert (members.live, members.rebuilt, members.position) == (4, 4, handled[-1].id)
    assert outbox.live == outbox.rebuilt == 6  # 4 syncs, a hold confirmation, a drift
    assert members.live_digest == members.rebuilt_digest and len(members.live_digest) == 64
    assert report.invariants.violations == 0 and report.invariants.events_checked > 10
    assert len(report.log.head) == 64
    assert audit(service).log.head == report.log.head  # the same log, the same chain


def test_a_deleted_member_row_is_missing(service: AssignmentService) -> None:
    known_day(service)
    moved = position_of(service, "TablesAssigned", 1)  # b2 moved to M4
    live_write(service, "DELETE FROM seatledger_members WHERE booking_id = 'b2'")
    report = audit(service)
    members = model(report, "members")
    assert not report.ok and not members.ok
    assert (members.missing, members.extra, members.changed) == (1, 0, 0)
    (difference,) = members.differences
    assert difference.kind == "missing" and difference.table == "seatledger_members"
    assert difference.key == {"restaurant_id": "r1", "booking_id": "b2", "table_id": "M4"}
    assert difference.position == moved
    assert difference.live is None and difference.rebuilt is not None
    assert model(report, "outbox").ok


def test_an_extra_outbox_row_is_extra_and_a_second_sync(service: AssignmentService) -> None:
    known_day(service)
    with service.read_models.read() as tx:
        (row,) = tx.execute(
            f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM seatledger_outbox"
            " WHERE type = :type AND booking_id = 'b4'",
            {"type": SYNC},
        )
    values = dict(zip(OUTBOX_COLUMNS, row, strict=True))
    values |= {"message_id": "forged-message", "seq": 7}
    with service.read_models.transaction() as tx:
        tx.insert_rows("seatledger_outbox", OUTBOX_COLUMNS, [tuple(values.values())])
    report = audit(service)
    outbox = model(report, "outbox")
    assert (outbox.missing, outbox.extra, outbox.changed) == (0, 1, 0)
    (difference,) = outbox.differences
    assert (difference.kind, difference.key, difference.position) == (
        "extra",
        {"message_id": "forged-message"},
        values["notification_id"],
    )
    (violation,) = report.invariants.first
    assert (violation.kind, violation.position, violation.booking_ids) == (
        "sync_per_change",
        values["notification_id"],
        ["b4"],
    )
    assert violation.message.startswith("2 live sync message(s)")


def test_a_changed_window_is_changed(service: AssignmentService) -> None:
    known_day(service)
    live_write(
        service,
        "UPDATE seatledger_members SET end_at = :end WHERE booking_id = 'b4'",
        end="2026-11-24T23:00:00Z",
    )
    members = model(audit(service), "members")
    assert (members.missing, members.extra, members.changed) == (0, 0, 1)
    (difference,) = members.differences
    assert difference.columns == ["end_at"]
    assert difference.key == {"restaurant_id": "r1", "booking_id": "b4", "table_id": "P5"}
    assert difference.live is not None and difference.live["end_at"] == "2026-11-24T23:00:00Z"
    assert difference.rebuilt is not None and difference.rebuilt["end_at"] == "2026-11-24T20:05:00Z"
    assert difference.position == position_of(service, "TablesAssigned", 2)


def test_an_edited_event_is_located(service: AssignmentService, tmp_path: Path) -> None:
    known_day(service)
    checkpoint = tmp_path / "log.checkpoint"
    written = Audit(service).run(checkpoint=checkpoint).log.checkpoint
    assert written is not None and written.action == "written" and written.ok
    assert Audit(service).run(checkpoint=checkpoint).ok  # nothing changed yet

    log = StoredLog(service)
    edited = position_of(service, "TablesAssigned", 2)  # b4 on P5
    state = log.state(edited)
    state["actor_id"] = "someone-else"
    log.edit(edited, json.dumps(state).encode())
    report = Audit(service).run(checkpoint=checkpoint)
    assert not report.ok
    verified = report.log.checkpoint
    assert verified is not None and verified.action == "verified" and not verified.ok
    assert verified.current_head != verified.head
    (finding,) = verified.findings
    (stored,) = service.recorder.select_notifications(start=edited, limit=1)
    assert (finding.kind, finding.position) == ("edited", edited)
    assert (finding.originator_id, finding.originator_version) == (
        str(stored.originator_id),
        stored.originator_version,
    )
    # the edited event also projects differently than the live outbox recorded it
    (changed,) = model(report, "outbox").differences
    assert (changed.kind, changed.position, changed.columns) == ("changed", edited, ["payload"])


def test_a_deleted_event_is_located(service: AssignmentService, tmp_path: Path) -> None:
    known_day(service)
    checkpoint = tmp_path / "log.checkpoint"
    Audit(service).run(checkpoint=checkpoint)
    deleted = position_of(service, "BookingFiled", 3)  # b4's directory entry: replays fine
    StoredLog(service).delete(deleted)
    report = Audit(service).run(checkpoint=checkpoint)
    verified = report.log.checkpoint
    assert verified is not None and not verified.ok and not report.ok
    (finding,) = verified.findings
    assert (finding.kind, finding.position) == ("deleted", deleted)
    if service.settings.persistence == "memory":
        # the memory store renumbers every later position: the live outbox's positions no
        # longer match the log, and the sync check says so
        assert report.invariants.violations > 0
    else:
        assert report.invariants.violations == 0  # a directory entry: history still replays


def test_reordered_events_are_located(service: AssignmentService, tmp_path: Path) -> None:
    known_day(service)
    checkpoint = tmp_path / "log.checkpoint"
    Audit(service).run(checkpoint=checkpoint)
    first, second = position_of(service, "BookingFiled", 0), position_of(service, "BookingFiled", 1)
    StoredLog(service).swap(first, second)
    verified = Audit(service).run(checkpoint=checkpoint).log.checkpoint
    assert verified is not None and not verified.ok
    assert [(f.kind, f.position, f.now_at) for f in verified.findings] == [
        ("reordered", first, second),
        ("reordered", second, first),
    ]


def test_a_checkpoint_accepts_events_appended_after_it(
    service: AssignmentService, tmp_path: Path
) -> None:
    known_day(service)
    checkpoint = tmp_path / "log.checkpoint"
    written = Audit(service).run(checkpoint=checkpoint).log.checkpoint
    service.register_booking(booking("b9", 2, "21:00"))
    service.assign_tables(assign("b9", "M5"))
    report = Audit(service).run(checkpoint=checkpoint)
    assert report.ok and report.log.checkpoint is not None
    assert report.log.checkpoint.current_head == written.head  # type: ignore[union-attr]
    assert report.log.head != written.head  # type: ignore[union-attr]


def test_a_forged_double_booking_is_caught(service: AssignmentService) -> None:
    known_day(service)
    day = service.load_day("r1", DAY)
    assert day is not None
    b4 = day.booking("b4")  # on P5; b2's window overlaps it
    b2 = day.booking("b2")
    forged_at = b4.window.start - timedelta(hours=1)
    forged = TablesAssigned(
        originator_id=day.id,
        originator_version=day.version + 1,
        timestamp=forged_at,
        command_id="forged-1",
        actor_id="mallory",
        restaurant_id="r1",
        service_date=DAY,
        change=TableChange(
            booking_id="b2",
            requested=("P5",),
            tables=("M4", "P5"),
            added=("P5",),
            removed=(),
            members=(
                SeatedTable(table_id="M4", assignment_id=b2.members[0].assignment_id),
                SeatedTable(table_id="P5", assignment_id="forged"),
            ),
            window=b2.window,
            zone_id="main",
            merge_group_id=None,
            status="confirmed",
            idempotency_key=None,
            source="manual",
        ),
    )
    StoredLog(service).append(service.mapper.to_stored_event(forged))
    position = service.recorder.max_notification_id()
    service.catch_up_projections()
    report = audit(service)
    assert not report.ok
    assert all(r.ok for r in report.read_models)  # the read models follow the (bad) log
    kinds = {v.kind: v for v in report.invariants.first}
    double = kinds["double_booking"]
    assert (double.position, double.booking_ids, double.table_ids) == (
        position,
        ["b2", "b4"],
        ["P5"],
    )
    assert double.instant == forged_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (double.restaurant_id, double.service_date) == ("r1", DAY.isoformat())
    # P5 is a fixed table of the patio, combined with M4 of the main room
    assert {"zone", "immovable"} <= set(kinds)
    assert all(v.position == position for v in report.invariants.first)


def test_a_confirm_after_expiry_is_caught(service: AssignmentService) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1"))
    placed = service.place_hold(hold("b1", "M1"))
    day = service.load_day("r1", DAY)
    assert day is not None
    change = TableChange(
        booking_id="b1",
        requested=("M1",),
        tables=("M1",),
        added=("M1",),
        removed=(),
        members=(SeatedTable(table_id="M1", assignment_id="a1"),),
        window=day.booking("b1").window,
        zone_id="main",
        merge_group_id=None,
        status="confirmed",
        idempotency_key="late",
        source="hold",
    )
    late = HoldConfirmed(
        originator_id=day.id,
        originator_version=day.version + 1,
        timestamp=placed.expires_at + timedelta(seconds=1),
        command_id="late-confirm",
        actor_id="host-1",
        restaurant_id="r1",
        service_date=DAY,
        change=change,
        hold_id=placed.hold_id,
        hold_tables=("M1",),
        zone_id="main",
        expires_at=placed.expires_at,
    )
    StoredLog(service).append(service.mapper.to_stored_event(late))
    service.catch_up_projections()
    (violation,) = audit(service).invariants.first
    assert (violation.kind, violation.booking_ids, violation.table_ids) == (
        "hold_expired",
        ["b1"],
        ["M1"],
    )
    assert violation.position == service.recorder.max_notification_id()


def test_an_unreadable_event_is_reported_not_fatal(service: AssignmentService) -> None:
    known_day(service)
    broken = position_of(service, "BookingFiled", 0)
    StoredLog(service).edit(broken, b"not json")
    report = audit(service)
    assert not report.ok
    (violation,) = report.invariants.first
    assert (violation.kind, violation.position) == ("undecodable", broken)


def test_an_audit_until_a_position_or_an_instant(service: AssignmentService) -> None:
    known_day(service)
    middle = position_of(service, "HoldConfirmed")
    report = audit(service, Until(position=middle))
    assert report.last_position == middle and report.events == middle
    assert report.ok  # nothing to compare past the end: not a difference
    assert not any(r.compared for r in report.read_models)
    assert report.invariants.violations == 0

    (stored,) = service.recorder.select_notifications(start=middle, limit=1)
    confirmed_at = service.event_source.decode(stored).timestamp
    until_instant = audit(service, Until(instant=confirmed_at))
    assert until_instant.last_position >= middle
    assert until_instant.until_instant == confirmed_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_audit_compares_at_the_live_positions(service: AssignmentService) -> None:
    """A live read model behind the log is compared where it stands, not with the end."""
    known_day(service)
    service.assign_tables(assign("b3", "M5"))
    service.catch_up_projections()
    with service.read_models.transaction() as tx:  # the outbox worker fell behind
        behind = position_of(service, "TablesAssigned", 2)
        tx.execute("DELETE FROM seatledger_outbox WHERE notification_id > :p", {"p": behind})
        tx.execute(
            "UPDATE seatledger_tracking SET notification_id = :p WHERE projection = 'outbox'",
            {"p": behind},
        )
    report = audit(service)
    assert report.ok, report.model_dump_json(indent=1)
    assert model(report, "outbox").position == behind
    handled = service.recorder.select_notifications(1, 10_000, topics=MembersProjection.topics)
    assert model(report, "members").position == handled[-1].id  # commands end in ledger events


def test_a_checkpoint_is_not_verified_by_a_shorter_audit(
    service: AssignmentService, tmp_path: Path
) -> None:
    known_day(service)
    checkpoint = tmp_path / "log.checkpoint"
    Audit(service).run(checkpoint=checkpoint)
    with pytest.raises(CheckpointError, match="verify it without --until"):
        Audit(service).run(Until(position=5), checkpoint=checkpoint)
    # a log that lost its last events is not "shorter": it is tampered with
    last = service.recorder.max_notification_id()
    StoredLog(service).delete(last or 0)
    verified = Audit(service).run(checkpoint=checkpoint).log.checkpoint
    assert verified is not None and not verified.ok
    assert [(f.kind, f.position) for f in verified.findings] == [("deleted", last)]
