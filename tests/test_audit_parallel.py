"""The audit replayed in several processes (PostgreSQL): the same report as in one, on a
generated log of several restaurants and on injected divergences the shares of the log
must agree on (a floor event every worker reads, a cut at an instant, a checkpoint)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from seatledger.application import cli
from seatledger.application.audit import Audit, Until
from seatledger.application.audit import parallel as parallel_module
from seatledger.application.audit.digest import DigestedNotification, event_digest
from seatledger.application.audit.parallel import ShardError, can_replay_in_parallel
from seatledger.application.audit.replay import page_reader, prefetched_pages
from seatledger.application.audit.report import AuditReport
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log, generate_log
from tests.audit_support import StoredLog, known_day, position_of


@pytest.fixture(scope="module")
def log() -> list[StoredEvent]:
    return generate_log(2500, seed=11, restaurants=3)


@pytest.fixture
def store(postgres_schema: str) -> Iterator[AssignmentService]:
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    with AssignmentService(settings.model_copy(update={"projection_mode": "off"})) as service:
        yield service


def same(first: AuditReport, second: AuditReport) -> bool:
    return first.model_dump(exclude={"seconds"}) == second.model_dump(exclude={"seconds"})


def test_a_generated_log_gives_one_report_in_any_number_of_processes(
    store: AssignmentService, log: list[StoredEvent]
) -> None:
    copy_log(log, store.recorder)
    store.catch_up_projections()
    one = Audit(store, workers=1, page_size=97).run()
    assert one.ok and one.events == len(log), one.model_dump_json(indent=1)
    assert one.invariants.events_checked > len(log) // 3
    for workers in (2, 3, 5):
        assert same(Audit(store, workers=workers, page_size=97).run(), one)


def test_a_cut_at_an_instant_is_where_the_first_later_event_of_any_share_is(
    store: AssignmentService, log: list[StoredEvent]
) -> None:
    copy_log(log, store.recorder)
    store.catch_up_projections()
    instant = store.event_source.decode(
        store.recorder.select_notifications(start=len(log) // 2, limit=1)[0]
    ).timestamp
    one = Audit(store, workers=1).run(Until(instant=instant))
    assert 0 < one.last_position < len(log)
    assert not any(r.compared for r in one.read_models)
    for workers in (2, 3):
        assert same(Audit(store, workers=workers).run(Until(instant=instant)), one)


def test_a_broken_floor_event_is_reported_once(postgres_schema: str) -> None:
    """Every worker reads the floor's events; only one reports what is wrong with them."""
    settings = Settings(
        persistence="postgres", postgres_schema=postgres_schema, projection_mode="in_process"
    )
    with AssignmentService(settings) as service:
        known_day(service)
        broken = position_of(service, "TableDefined", 2)
        StoredLog(service).edit(broken, b"not json")
        one = Audit(service, workers=1).run()
        two = Audit(service, workers=2).run()
    assert same(one, two)
    undecodable = [v for v in two.invariants.first if v.kind == "undecodable"]
    assert [v.position for v in undecodable] == [broken]
    # the layout cannot be replayed past the hole: reported once, not once per worker
    unreplayable = [v.position for v in two.invariants.first if v.kind == "unreplayable"]
    assert len(unreplayable) == len(set(unreplayable)) > 0


def test_a_checkpoint_written_in_one_process_locates_an_edit_in_two(
    postgres_schema: str, tmp_path: Path
) -> None:
    settings = Settings(
        persistence="postgres", postgres_schema=postgres_schema, projection_mode="in_process"
    )
    checkpoint = tmp_path / "log.checkpoint"
    with AssignmentService(settings) as service:
        known_day(service)
        Audit(service, workers=1).run(checkpoint=checkpoint)
        edited = position_of(service, "HoldPlaced", 0)
        log = StoredLog(service)
        state = log.state(edited)
        log.edit(edited, json.dumps({**state, "actor_id": "mallory"}).encode())
        one = Audit(service, workers=1).run(checkpoint=checkpoint)
        two = Audit(service, workers=2).run(checkpoint=checkpoint)
    assert same(one, two)
    assert two.log.checkpoint is not None and not two.log.checkpoint.ok
    assert [(f.kind, f.position) for f in two.log.checkpoint.findings] == [("edited", edited)]


def test_progress_is_reported_up_to_the_end(
    store: AssignmentService, log: list[StoredEvent]
) -> None:
    copy_log(log, store.recorder)
    store.catch_up_projections()
    seen: list[tuple[int, int]] = []
    report = Audit(store, workers=2, progress=lambda at, last: seen.append((at, last))).run()
    assert report.ok and seen
    assert seen[-1] == (report.last_position, report.last_position)
    assert [at for at, _ in seen] == sorted(at for at, _ in seen)


def test_a_failing_worker_fails_the_audit_with_its_reason(
    store: AssignmentService, log: list[StoredEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_log(log, store.recorder)
    store.catch_up_projections()

    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(parallel_module, "_replay", broken)  # the forked child inherits it
    with pytest.raises(ShardError, match="disk on fire"):
        Audit(store, workers=2).run()
    assert Audit(store, workers=1).run().ok  # the store itself is fine


def test_the_command_takes_a_number_of_workers(
    store: AssignmentService,
    log: list[StoredEvent],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy_log(log, store.recorder)
    store.catch_up_projections()
    settings = store.settings
    monkeypatch.setenv("SEATLEDGER_PERSISTENCE", "postgres")
    monkeypatch.setenv("SEATLEDGER_POSTGRES_SCHEMA", settings.postgres_schema)
    answers = []
    for workers in ("1", "2"):
        code = cli.main(["audit", "--json", "--workers", workers])
        out, err = capsys.readouterr()
        assert code == 0 and err == "", err
        answers.append({k: v for k, v in json.loads(out).items() if k != "seconds"})
    assert answers[0] == answers[1] and answers[0]["events"] == len(log)
    assert cli.main(["audit", "--workers", "0"]) == cli.EXIT_USAGE
    assert "--workers must be positive" in capsys.readouterr().err


def test_the_page_reader_reads_what_the_recorder_reads(
    store: AssignmentService, log: list[StoredEvent]
) -> None:
    copy_log(log, store.recorder)
    last = store.recorder.max_notification_id() or 0
    read = page_reader(store.recorder, 97, last - 5)
    mine = [n for page in prefetched_pages(read, 3, last - 5, 97) for n in page]
    recorders = store.recorder.select_notifications(
        start=4, limit=len(log), stop=last - 5, inclusive_of_start=True
    )

    def values(n: Notification) -> tuple[object, ...]:
        return (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))

    assert [values(n) for n in mine] == [values(n) for n in recorders]
    assert len(mine) == last - 8 and all(type(n.state) is bytes for n in mine)
    # each event's digest, computed by PostgreSQL in the same query, is the one Python makes
    assert all(isinstance(n, DigestedNotification) for n in mine)
    assert [n.digest for n in mine if isinstance(n, DigestedNotification)] == [
        event_digest(n.originator_id, n.originator_version, n.topic, bytes(n.state))
        for n in recorders
    ]


def test_a_worker_that_dies_without_a_word_fails_the_audit(
    store: AssignmentService, log: list[StoredEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_log(log, store.recorder)
    store.catch_up_projections()

    def dies(*args: object) -> None:
        os._exit(3)  # as a process killed mid-replay: no answer, no traceback

    monkeypatch.setattr(parallel_module, "_replay", dies)
    with pytest.raises(ShardError, match="died without an answer"):
        Audit(store, workers=2).run()


def test_only_uuid_aggregate_ids_on_postgresql_are_shared_out(store: AssignmentService) -> None:
    """Shares are cut by the last byte of a uuid: a store with text ids replays in one
    process (the page reader then digests in Python)."""
    assert can_replay_in_parallel(store.recorder)
    assert isinstance(store.recorder, PostgresApplicationRecorder)
    recorder = copy.copy(store.recorder)
    recorder.datastore = copy.copy(store.recorder.datastore)
    recorder.datastore.originator_id_type = "text"
    assert not can_replay_in_parallel(recorder)
    with AssignmentService(Settings(persistence="memory")) as memory:
        assert not can_replay_in_parallel(memory.recorder)


def test_a_number_of_workers_below_one_is_refused(store: AssignmentService) -> None:
    with pytest.raises(ValueError, match="workers must be positive"):
        Audit(store, workers=0)
