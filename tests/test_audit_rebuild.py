"""Blue/green rebuilds: built beside the live read models, verified, swapped in; outbox
messages keep their delivery state, so a rebuild after a relay run republishes nothing.
Every backend, and the command line on a SQLite file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from seatledger.application import cli
from seatledger.application.audit import Audit
from seatledger.application.audit import rebuild as rebuild_module
from seatledger.application.audit.compare import ReadModelSpec
from seatledger.application.audit.rebuild import RebuildVerificationError, rebuild
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.application.worker import build_relay
from seatledger.projections.db import Row, Tx
from seatledger.projections.deliveries import Delivery
from seatledger.projections.outbox import outbox_counts
from tests.audit_support import known_day, live_write


class Collecting:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, delivery: Delivery) -> None:
        self.sent.append(delivery.message_id)


def relay_everything(service: AssignmentService) -> list[str]:
    publisher = Collecting()
    relay = build_relay(service.settings, service.read_models, publisher, Telemetry())
    while relay.run_once().claimed:
        pass
    return publisher.sent


def statuses(service: AssignmentService) -> dict[str, str]:
    with service.read_models.read() as tx:
        return dict(tx.execute("SELECT message_id, status FROM seatledger_outbox"))


def test_a_rebuild_after_a_relay_run_republishes_nothing(service: AssignmentService) -> None:
    known_day(service)
    sent = relay_everything(service)
    assert len(sent) == 6
    before = statuses(service)
    assert set(before.values()) == {"done"}

    members, outbox = rebuild(service)
    assert (members.name, outbox.name) == ("members", "outbox")
    assert (outbox.inserted, outbox.updated, outbox.deleted) == (0, 0, 0)
    assert outbox.kept_delivery_state == outbox.rows == 6
    assert members.verified and outbox.verified
    assert statuses(service) == before
    assert relay_everything(service) == []  # nothing to send again
    assert Audit(service).run().ok


def test_a_rebuild_repairs_rows_and_leaves_only_new_messages_pending(
    service: AssignmentService,
) -> None:
    known_day(service)
    relay_everything(service)
    live_write(service, "DELETE FROM seatledger_members WHERE booking_id = 'b2'")
    live_write(service, "DELETE FROM seatledger_outbox WHERE booking_id = 'b4'")
    live_write(
        service,
        "UPDATE seatledger_members SET end_at = '2026-11-24T23:00:00Z' WHERE booking_id = 'b1'",
    )
    assert not Audit(service).run().ok

    members, outbox = rebuild(service)
    assert (members.inserted, members.updated, members.deleted) == (1, 2, 0)
    assert (outbox.inserted, outbox.deleted, outbox.kept_delivery_state) == (1, 0, 5)
    assert Audit(service).run().ok
    pending = [mid for mid, status in statuses(service).items() if status == "pending"]
    assert len(pending) == 1  # the one message the outbox lacked
    assert relay_everything(service) == pending


def test_a_rebuild_catches_a_lagging_read_model_up(service: AssignmentService) -> None:
    known_day(service)
    live_write(service, "DELETE FROM seatledger_members")  # as it stood at position 10
    live_write(
        service, "UPDATE seatledger_tracking SET notification_id = 10 WHERE projection = 'members'"
    )
    last = service.recorder.max_notification_id()
    reports = rebuild(service, ["members"])
    assert [(r.name, r.position, r.inserted) for r in reports] == [("members", last, 4)]
    assert [r.position() for r in service.projection_runners if r.name == "members"] == [last]
    assert Audit(service).run().ok


def test_seatledger_rebuild_keeps_delivery_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.db"
    with AssignmentService(Settings(persistence="sqlite", sqlite_path=path)) as service:
        known_day(service)
        relay_everything(service)
    assert cli.main(["rebuild", "--db", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "outbox: at position" in out and "6 kept their delivery state" in out
    assert cli.main(["relay", "--once", "--db", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out)["claimed"] == 0
    with AssignmentService(Settings(persistence="sqlite", sqlite_path=path)) as service:
        assert outbox_counts(service.read_models) == {
            "capacity.assignment.sync": {"done": 4},
            "capacity.hold.confirmed": {"done": 1},
            "capacity.policy.drift": {"done": 1},
        }


def test_a_swap_that_does_not_verify_rolls_back(
    service: AssignmentService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken swap (here: one that deletes rows and writes none back) is caught by the
    verification inside the swap's transaction: readers keep the old rows."""
    known_day(service)
    live_write(service, "DELETE FROM seatledger_members WHERE booking_id = 'b4'")
    with service.read_models.read() as tx:
        before = tx.execute("SELECT * FROM seatledger_members ORDER BY booking_id, table_id")

    def delete_only(tx: Tx, spec: ReadModelSpec, rebuilt: Sequence[Row]) -> tuple[int, int, int]:
        tx.execute(f"DELETE FROM {spec.table}")
        return 0, 0, 0

    monkeypatch.setattr(rebuild_module, "_replace_rows", delete_only)
    with pytest.raises(RebuildVerificationError, match="members"):
        rebuild(service, ["members"])
    with service.read_models.read() as tx:
        assert (
            tx.execute("SELECT * FROM seatledger_members ORDER BY booking_id, table_id") == before
        )
