"""Determinism, proven: the same log gives the same digests on every backend, whatever the
page size of the live projections or of the audit, run after run; and events stored in an
older version replay, through upcasting, to the same read models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from seatledger.application.audit import Audit
from seatledger.application.audit.parallel import can_replay_in_parallel
from seatledger.application.audit.report import AuditReport
from seatledger.application.mapper import event_registry
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log, generate_log
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import DayEvent, HoldPlaced
from seatledger.domain.values import canonical_json
from tests.conftest import settings_for

EVENTS = 1500
#: (live projection page size, audit page size)
PAGE_SIZES = ((1, 1000), (7, 13), (500, 1))


@pytest.fixture(scope="module")
def log() -> list[StoredEvent]:
    return generate_log(EVENTS, seed=5, restaurants=2)


def fingerprint(report: AuditReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "events": report.events,
        "head": report.log.head,
        "violations": report.invariants.violations,
        **{f"{r.name}.live": r.live_digest for r in report.read_models},
        **{f"{r.name}.rebuilt": r.rebuilt_digest for r in report.read_models},
        **{f"{r.name}.rows": r.rebuilt for r in report.read_models},
    }


def audit_copy(
    settings: Settings, stored: list[StoredEvent], live_page: int, audit_page: int
) -> dict[str, object]:
    settings = settings.model_copy(
        update={"projection_mode": "off", "projection_page_size": live_page}
    )
    with AssignmentService(settings) as service:
        copy_log(stored, service.recorder)
        service.catch_up_projections()
        first = fingerprint(Audit(service, page_size=audit_page).run())
        assert fingerprint(Audit(service, page_size=audit_page).run()) == first  # repeated
        if can_replay_in_parallel(service.recorder):  # and in two or three processes
            for workers in (2, 3):
                audit = Audit(service, page_size=audit_page, workers=workers)
                assert fingerprint(audit.run()) == first
    return first


_REFERENCE: dict[str, object] = {}


def reference(log: list[StoredEvent]) -> dict[str, object]:
    """The memory store's answer with the default page sizes: what every run must equal."""
    if not _REFERENCE:
        _REFERENCE.update(audit_copy(Settings(persistence="memory"), log, 500, 1000))
        assert _REFERENCE["ok"] is True and _REFERENCE["events"] == len(log)
    return _REFERENCE


@pytest.mark.parametrize("pages", PAGE_SIZES, ids=lambda p: f"live{p[0]}-audit{p[1]}")
def test_the_same_log_gives_the_same_digests(
    backend: str,
    pages: tuple[int, int],
    log: list[StoredEvent],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    settings = settings_for(backend, request, tmp_path)
    assert audit_copy(settings, log, *pages) == reference(log)


def as_older_version(stored: StoredEvent) -> StoredEvent:
    """The event as the version before the day was named stored it: day events without
    ``restaurant_id`` and ``service_date`` (HoldPlaced: version 2, others: version 1)."""
    event_class = event_registry().get(stored.topic)
    if event_class is None or not issubclass(event_class, DayEvent):
        return stored
    state = json.loads(stored.state)
    del state["restaurant_id"], state["service_date"]
    state.pop("class_version", None)
    if event_class is HoldPlaced:
        state["class_version"] = 2
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=canonical_json(state).encode(),
    )


def test_older_event_versions_replay_to_the_same_read_models(log: list[StoredEvent]) -> None:
    older = [as_older_version(s) for s in log]
    day_events = [
        s for s in log if issubclass(event_registry().get(s.topic, DomainEvent), DayEvent)
    ]
    rewritten = sum(a.state != b.state for a, b in zip(older, log, strict=True))
    assert rewritten == len(day_events) > EVENTS // 4  # every day event, in its older form
    answer = audit_copy(Settings(persistence="memory"), older, 500, 1000)
    expected = reference(log)
    assert answer["head"] != expected["head"]  # other bytes are another log
    same = {k: v for k, v in answer.items() if k != "head"}
    assert same == {k: v for k, v in expected.items() if k != "head"}
