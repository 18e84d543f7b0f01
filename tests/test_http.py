"""The HTTP service through a real client against a real server on 127.0.0.1: every command
and query, problem documents and Retry-After, API keys (missing, unknown, forged actors,
roles, other tenants, rotation while serving), idempotent re-sends and the checked-in schema.

The service behind the server is the test's own (memory store, manual clock, recording
telemetry), so each test can check what was written and what was logged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from seatledger.application import (
    AssignmentService,
    ManualClock,
    RecordingSink,
    Settings,
    Telemetry,
    VenuePolicy,
)
from seatledger.application.commands import COMMAND_METHODS
from seatledger.application.errors import InfrastructureCode, code_spec
from seatledger.application.http import create_app, openapi_document
from seatledger.domain.errors import ErrorCode
from tests.http_support import KEYS, Key, auth, body, running, write_keys
from tests.support import DAY, EVENING, booking, floor, hold, other_floor, position

START = datetime.fromisoformat(EVENING)
DOCS = Path(__file__).resolve().parent.parent / "docs"
MANAGER, HOST, HOST2, MANAGER_R2, SYSTEM = (
    "secret-manager-r1",
    "secret-host-r1",
    "secret-host2-r1",
    "secret-manager-r2",
    "secret-system",
)
PROBLEM = "application/problem+json"


class Api:
    """A client of the running service, with the test's handles on the service itself."""

    def __init__(
        self, client: httpx.Client, service: AssignmentService, sink: RecordingSink, keys: Path
    ) -> None:
        self.client, self.service, self.sink, self.keys = client, service, sink, keys
        assert isinstance(service.clock, ManualClock)
        self.clock = service.clock

    def command(
        self,
        secret: str | None,
        method: str,
        payload: Any,
        *,
        restaurant_id: str = "r1",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.client.post(
            f"/restaurants/{restaurant_id}/commands/{method.replace('_', '-')}",
            json=payload,
            headers={**(auth(secret) if secret else {}), **(headers or {})},
        )

    def ok(self, secret: str, method: str, payload: Any, **kwargs: Any) -> Any:
        response = self.command(secret, method, payload, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, secret: str, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params, headers=auth(secret))

    def written(self) -> int:
        return position(self.service)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    sink = RecordingSink()
    keys = tmp_path / "keys.json"
    write_keys(keys, KEYS)
    service = AssignmentService(
        Settings(persistence="memory"), clock=ManualClock(START), telemetry=Telemetry(sinks=[sink])
    )
    try:
        with running(create_app(service, keys)) as url, httpx.Client(base_url=url) as client:
            yield Api(client, service, sink, keys)
    finally:
        service.close()


@pytest.fixture
def seated(api: Api) -> Api:
    """r1 (the suite's floor) with bookings b1..b3 at 19:00, and r2 with its own floor."""
    api.ok(MANAGER, "create_restaurant", body(floor()))
    api.ok(MANAGER_R2, "create_restaurant", body(other_floor()), restaurant_id="r2")
    for booking_id in ("b1", "b2", "b3"):
        api.ok(HOST, "register_booking", body(booking(booking_id)))
    return api


def assert_problem(response: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{code}"
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["title"].strip() and problem["detail"].strip() and problem["hint"].strip()
    assert isinstance(problem["details"], dict)
    return problem


# --- every command and query ------------------------------------------------------------------


def test_every_command_and_query_answers_over_http(api: Api) -> None:
    used: set[str] = set()

    def run(secret: str, method: str, payload: Any) -> Any:
        used.add(method)
        return api.ok(secret, method, payload)

    run(MANAGER, "create_restaurant", body(floor()))
    run(MANAGER, "define_zone", {"zone": {"zone_id": "terrace", "name": "Terrace"}})
    for table_id in ("T1", "T2"):
        table = {"table_id": table_id, "zone_id": "terrace", "capacity": 2, "movable": True}
        run(MANAGER, "define_table", {"table": table})
    assert ["T1", "T2"] in run(MANAGER, "link_tables", {"edges": [["T1", "T2"]]})["adjacency"]
    assert ["T1", "T2"] not in run(MANAGER, "unlink_tables", {"edges": [["T1", "T2"]]})["adjacency"]
    policy = VenuePolicy(slack_budget=3).model_dump(mode="json")
    assert run(MANAGER, "change_policy", {"policy": policy})["policy"]["slack_budget"] == 3

    for booking_id in ("b1", "b2", "b3", "b4", "b5"):
        run(HOST, "register_booking", body(booking(booking_id)))
    placed = run(HOST, "place_hold", body(hold("b1", "M1")))
    assert placed["actor_id"] == "host-1"  # the key's actor
    assert run(HOST, "extend_hold", {"hold_id": placed["hold_id"], "ttl_seconds": 300})["extended"]
    assert run(HOST, "release_hold", {"hold_id": placed["hold_id"]})["released"]
    again = run(HOST, "place_hold", body(hold("b1", "M1")))
    confirmed = run(HOST, "confirm_hold", {"booking_id": "b1", "hold_id": again["hold_id"]})
    assert confirmed["table_ids"] == ["M1"]
    assert run(HOST, "assign_tables", {"booking_id": "b2", "table_ids": ["M3"]})["changed"]
    assert run(HOST, "unassign_tables", {"booking_id": "b2"})["table_ids"] == []
    quoted = run(HOST, "quote", {"booking_id": "b3"})
    assert quoted["hold"] is not None
    seated = run(HOST, "auto_assign", {"booking_id": "b4"})
    assert seated["outcome"] == "assigned"
    for method, booking_id in (
        ("cancel_booking", "b2"),
        ("mark_no_show", "b5"),
        ("complete_booking", "b1"),
    ):
        run(HOST, method, {"booking_id": booking_id})
    api.clock.advance(timedelta(hours=1))
    expired = run(SYSTEM, "expire_holds", {"service_date": DAY.isoformat()})
    assert quoted["hold"]["hold_id"] in expired
    assert used == set(COMMAND_METHODS.values())

    api.service.catch_up_projections()  # the members read model, before reading it
    b4_tables = seated["assignment"]["table_ids"]
    assert api.get(HOST, "/restaurants/r1").json()["policy"]["slack_budget"] == 3
    assert api.get(HOST, "/restaurants/r1/bookings/b4").json()["table_ids"] == b4_tables
    members = api.get(HOST, "/restaurants/r1/bookings/b4/members").json()
    assert sorted(member["table_id"] for member in members) == b4_tables
    held = api.get(HOST, f"/restaurants/r1/holds/{again['hold_id']}").json()
    assert held["status"] == "consumed"
    day = api.get(HOST, f"/restaurants/r1/days/{DAY.isoformat()}").json()
    assert {b["booking_id"]: b["status"] for b in day["bookings"]} == {
        "b1": "completed",
        "b2": "cancelled",
        "b3": "pending",
        "b4": "confirmed",
        "b5": "no_show",
    }
    window = seated["assignment"]["window"]
    availability = api.get(
        HOST, f"/restaurants/r1/tables/{b4_tables[0]}/availability", **window
    ).json()
    assert availability["available"] is False
    assert availability["blocking_booking_ids"] == ["b4"]


# --- problem documents ------------------------------------------------------------------------


def test_errors_are_problem_documents_with_the_catalogue_status(seated: Api) -> None:
    missing = seated.get(HOST, "/restaurants/r1/bookings/nobody")
    problem = assert_problem(missing, "BOOKING_NOT_FOUND", 404)
    assert problem["title"] == code_spec(ErrorCode.BOOKING_NOT_FOUND).meaning
    assert problem["details"] == {"restaurant_id": "r1", "booking_id": "nobody"}
    assert "Retry-After" not in missing.headers

    seated.ok(HOST, "assign_tables", {"booking_id": "b1", "table_ids": ["M1"]})
    taken = seated.command(HOST, "assign_tables", {"booking_id": "b2", "table_ids": ["M1"]})
    problem = assert_problem(taken, "ASSIGNMENT_CONFLICT", 409)
    assert problem["details"]["conflicts"][0]["booking_id"] == "b1"
    assert "Retry-After" not in taken.headers

    wrong_type = seated.command(
        HOST, "register_booking", {**body(booking("b9")), "party_size": "x"}
    )
    problem = assert_problem(wrong_type, "INVALID_INPUT", 422)
    assert [e["field"] for e in problem["details"]["errors"]] == ["party_size"]

    # the service's own input contract, past the request's shape: the same problem
    hostile = seated.command(
        HOST, "register_booking", {**body(booking("b9")), "booking_id": "b\x1f9"}
    )
    problem = assert_problem(hostile, "INVALID_INPUT", 422)
    (error,) = problem["details"]["errors"]
    assert error["type"] == "input_contract" and "booking_id" in error["error"]
    assert "\x1f" not in hostile.text  # the offending value is never echoed

    naive = seated.get(
        HOST, "/restaurants/r1/tables/M1/availability", start="2026-11-24T19:00", end="x"
    )
    problem = assert_problem(naive, "INVALID_INPUT", 422)
    assert {e["field"] for e in problem["details"]["errors"]} == {"query.start", "query.end"}

    nowhere = seated.client.get("/no/such/route", headers=auth(HOST))
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"] == PROBLEM
    assert nowhere.json()["type"] == "about:blank"


def test_a_problem_type_uri_documents_its_code(api: Api) -> None:
    documented = api.client.get("/problems/CONCURRENCY_CONFLICT")  # public: no key
    assert documented.status_code == 200
    assert documented.json() == {
        "type": "/problems/CONCURRENCY_CONFLICT",
        "code": "CONCURRENCY_CONFLICT",
        "title": code_spec(InfrastructureCode.CONCURRENCY_CONFLICT).meaning,
        "status": 503,
        "hint": code_spec(InfrastructureCode.CONCURRENCY_CONFLICT).hint,
        "retryable": True,
    }
    assert api.client.get("/problems/TENANT_FORBIDDEN").json()["status"] == 403
    assert api.client.get("/problems/NO_SUCH_CODE").status_code == 404


def test_a_rate_limited_hold_says_when_to_retry(seated: Api) -> None:
    previous = None
    for _ in range(5):
        payload = {**body(hold("b1", "M1")), "replaces_hold_id": previous}
        previous = seated.ok(HOST, "place_hold", payload)["hold_id"]
    before = seated.written()
    limited = seated.command(HOST, "place_hold", {**body(hold("b1", "M2"))})
    problem = assert_problem(limited, "HOLD_RATE_LIMITED", 429)
    # the window is 60 s from the oldest of the five holds, all placed now (manual clock)
    assert limited.headers["Retry-After"] == "60"
    assert problem["details"]["actor_id"] == "host-1"
    assert seated.written() == before
    # the limit is per actor, and the actor is the key's: another host is not limited
    assert seated.ok(HOST2, "place_hold", body(hold("b1", "M2")))["actor_id"] == "host-2"


class InterruptedService(AssignmentService):
    """Before each of the next saves, in order, another writer may get in (None: it does
    not): a lost race, deterministically."""

    interlopers: list[Callable[[], object] | None]

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        interloper = self.interlopers.pop(0) if getattr(self, "interlopers", None) else None
        if interloper is not None:
            interloper()
        return super().save(*objs, **kwargs)


@contextmanager
def interrupted_server(tmp_path: Path) -> Iterator[tuple[Api, InterruptedService]]:
    """r1 with booking b1 behind a server whose service has no re-runs left for a lost race."""
    keys = tmp_path / "keys.json"
    write_keys(keys, KEYS)
    settings = Settings(persistence="memory", command_retries=0)
    with InterruptedService(settings, clock=ManualClock(START)) as service:
        service.execute(floor())
        service.execute(booking("b1"))
        with running(create_app(service, keys)) as url, httpx.Client(base_url=url) as client:
            yield Api(client, service, RecordingSink(), keys), service


def test_a_lost_race_is_a_retryable_503_and_the_re_send_goes_through(tmp_path: Path) -> None:
    with interrupted_server(tmp_path) as (api, service):
        resend = {"Idempotency-Key": "place-b1-m1"}
        service.interlopers = [lambda: service.register_booking(booking("b2"))]
        before = api.written()

        lost = api.command(HOST, "place_hold", body(hold("b1", "M1")), headers=resend)
        assert_problem(lost, "CONCURRENCY_CONFLICT", 503)
        assert lost.headers["Retry-After"] == "1"
        # only the other writer's booking, its index and its ledger entry
        assert api.written() == before + 3
        assert service.get_day("r1", DAY).holds == []

        placed = api.command(HOST, "place_hold", body(hold("b1", "M1")), headers=resend)
        assert placed.status_code == 200
        assert placed.json()["table_ids"] == ["M1"]


def test_a_re_sent_auto_assign_after_a_lost_race_goes_through(tmp_path: Path) -> None:
    """Clients are told to re-send a 503 with the same command id. An auto-assign whose
    confirm lost the race released its hold; the re-send must quote anew, not replay the
    released hold (today it answers HOLD_NOT_ACTIVE: the service's auto_assign replays its
    ``<id>:quote:1`` step, whose hold the failed run released)."""
    with interrupted_server(tmp_path) as (api, service):
        resend = {"Idempotency-Key": "seat-b1"}
        # the quote's save goes through; the confirm's save loses to another writer
        service.interlopers = [None, lambda: service.register_booking(booking("b2"))]

        lost = api.command(HOST, "auto_assign", {"booking_id": "b1"}, headers=resend)
        assert_problem(lost, "CONCURRENCY_CONFLICT", 503)
        assert lost.headers["Retry-After"] == "1"
        assert [h.status for h in service.get_day("r1", DAY).holds] == ["released"]

        again = api.command(HOST, "auto_assign", {"booking_id": "b1"}, headers=resend)
        assert again.status_code == 200, again.text
        assert again.json()["outcome"] == "assigned"


# --- credentials ------------------------------------------------------------------------------


def test_a_request_without_a_valid_key_is_refused_before_anything_else(seated: Api) -> None:
    before = seated.written()
    refusals = [
        seated.command(None, "register_booking", body(booking("b9"))),
        seated.command("not-a-key", "register_booking", body(booking("b9"))),
        seated.client.post(  # a malformed body: still 401, the body is never read
            "/restaurants/r1/commands/register-booking",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
        seated.client.get("/restaurants/r1", headers={"Authorization": f"Basic {HOST}"}),
        seated.client.get("/restaurants/r1", headers={"Authorization": "Bearer"}),
    ]
    for response in refusals:
        assert_problem(response, "UNAUTHENTICATED", 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert seated.written() == before
    reasons = [record.fields["reason"] for record in seated.sink.named("auth.failed")]
    assert reasons == ["missing", "unknown_key", "missing", "missing", "missing"]
    # the probes and the schema are public
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert seated.client.get(path).status_code == 200


def test_the_actor_and_role_are_the_keys_never_the_bodys(seated: Api) -> None:
    placed = seated.ok(HOST, "place_hold", body(hold("b1", "M1")))
    before = seated.written()
    for forged in (
        {"actor_role": "manager"},
        {"actor_id": "host-1"},
        {"actor_id": "mgr-1", "actor_role": "manager"},
        {"restaurant_id": "r2"},
    ):
        refused = seated.command(HOST2, "release_hold", {"hold_id": placed["hold_id"], **forged})
        problem = assert_problem(refused, "INVALID_INPUT", 422)
        assert {e["field"] for e in problem["details"]["errors"]} == set(forged)
    assert seated.written() == before

    # host-2 is a host: it may not release host-1's hold; a manager's key may
    forbidden = seated.command(HOST2, "release_hold", {"hold_id": placed["hold_id"]})
    assert assert_problem(forbidden, "HOLD_FORBIDDEN", 403)["details"]["actor_id"] == "host-2"
    assert seated.written() == before
    assert seated.ok(MANAGER, "release_hold", {"hold_id": placed["hold_id"]})["released"]


def test_a_hosts_key_may_not_change_the_floor(seated: Api) -> None:
    before = seated.written()
    refused = seated.command(
        HOST, "change_policy", {"policy": VenuePolicy().model_dump(mode="json")}
    )
    problem = assert_problem(refused, "ROLE_FORBIDDEN", 403)
    assert problem["details"] == {
        "operation": "change_policy",
        "role": "host",
        "allowed_roles": ["manager", "system"],
    }
    assert seated.written() == before


def test_another_tenants_restaurant_is_403_writes_nothing_and_is_logged(seated: Api) -> None:
    before = seated.written()
    attempts = [
        seated.command(HOST, "register_booking", body(booking("x1")), restaurant_id="r2"),
        seated.command(
            HOST, "assign_tables", {"booking_id": "b1", "table_ids": ["S1"]}, restaurant_id="r2"
        ),
        seated.command(MANAGER, "create_restaurant", body(floor("r3")), restaurant_id="r3"),
        seated.get(HOST, "/restaurants/r2"),
        seated.get(HOST, "/restaurants/r2/bookings/b1"),
    ]
    for response in attempts:
        problem = assert_problem(response, "TENANT_FORBIDDEN", 403)
        assert set(problem["details"]) == {"restaurant_id"}  # nothing about the key's tenants
    assert seated.written() == before
    violations = seated.sink.named("tenancy.violation")
    assert [(v.fields["operation"], v.fields["restaurant_id"]) for v in violations] == [
        ("register_booking", "r2"),
        ("assign_tables", "r2"),
        ("create_restaurant", "r3"),
        ("get_restaurant", "r2"),
        ("get_booking", "r2"),
    ]
    assert {v.fields["key_id"] for v in violations} == {"host-r1", "manager-r1"}


def test_another_tenants_ids_inside_ones_own_restaurant_reach_nothing(seated: Api) -> None:
    seated.ok(
        MANAGER_R2, "register_booking", body(booking("g1", restaurant_id="r2")), restaurant_id="r2"
    )
    foreign = seated.ok(
        MANAGER_R2, "place_hold", body(hold("g1", "S1", restaurant_id="r2")), restaurant_id="r2"
    )
    before = seated.written()
    confirm = seated.command(
        HOST, "confirm_hold", {"booking_id": "b1", "hold_id": foreign["hold_id"]}
    )
    assert_problem(confirm, "HOLD_RESTAURANT_MISMATCH", 403)
    assert "r2" not in confirm.text
    assert_problem(seated.get(HOST, "/restaurants/r1/bookings/g1"), "BOOKING_NOT_FOUND", 404)
    assert_problem(
        seated.command(HOST, "assign_tables", {"booking_id": "b1", "table_ids": ["S1"]}),
        "TABLE_NOT_FOUND",
        404,
    )
    assert seated.written() == before
    (violation,) = seated.sink.named("tenancy.violation")
    assert violation.fields["hold_restaurant_id"] == "r2"


def test_keys_rotate_while_the_server_runs(seated: Api) -> None:
    assert seated.get(HOST, "/restaurants/r1").status_code == 200
    rotated = {k: v for k, v in KEYS.items() if k != HOST}
    rotated["secret-host-r1-v2"] = Key("host-r1-v2", "host-1", "host", ["r1"])
    write_keys(seated.keys, rotated)

    assert_problem(seated.get(HOST, "/restaurants/r1"), "UNAUTHENTICATED", 401)
    assert seated.get("secret-host-r1-v2", "/restaurants/r1").status_code == 200
    assert seated.sink.named("auth.keys_reloaded")[-1].fields["keys"] == len(rotated)

    # a broken file keeps the keys in force, and says so once
    write_keys(seated.keys, '{"keys": [{"key_id": "half-written"')
    assert seated.get("secret-host-r1-v2", "/restaurants/r1").status_code == 200
    assert seated.get("secret-host-r1-v2", "/restaurants/r1").status_code == 200
    (invalid,) = seated.sink.named("auth.keys_invalid")
    assert invalid.fields["kept_keys"] == len(rotated)

    # widening a key's restaurants takes effect at once too
    widened = {**rotated, "secret-host-r1-v2": Key("host-r1-v2", "host-1", "host", ["r1", "r2"])}
    write_keys(seated.keys, widened)
    assert seated.get("secret-host-r1-v2", "/restaurants/r2").status_code == 200


# --- idempotent re-sends ----------------------------------------------------------------------


def test_a_re_sent_command_returns_the_original_answer_and_writes_nothing(seated: Api) -> None:
    key = {"Idempotency-Key": "assign-b1-m1"}
    payload = {"booking_id": "b1", "table_ids": ["M1"]}
    first = seated.command(HOST, "assign_tables", payload, headers=key)
    assert first.status_code == 200 and first.json()["changed"]
    before = seated.written()
    again = seated.command(HOST, "assign_tables", payload, headers=key)
    assert again.status_code == 200
    assert seated.written() == before
    assert again.json()["table_ids"] == first.json()["table_ids"]
    assert again.json()["members"] == first.json()["members"]

    # the command id may come in the body instead; both, differing, is refused
    booked = seated.ok(HOST, "register_booking", {**body(booking("b7")), "command_id": "reg-b7"})
    before = seated.written()
    assert (
        seated.ok(HOST, "register_booking", {**body(booking("b7")), "command_id": "reg-b7"})
        == booked
    )
    assert seated.written() == before
    clash = seated.command(
        HOST,
        "register_booking",
        {**body(booking("b8")), "command_id": "a"},
        headers={"Idempotency-Key": "b"},
    )
    assert_problem(clash, "INVALID_INPUT", 422)
    assert seated.written() == before


# --- the schema -------------------------------------------------------------------------------


def test_the_checked_in_openapi_document_is_the_apps(api: Api) -> None:
    """Regenerate with ``seatledger serve --print-openapi > docs/openapi.json``."""
    checked_in = json.loads((DOCS / "openapi.json").read_text())
    assert api.client.get("/openapi.json").json() == checked_in
    assert openapi_document() == checked_in
    operations = {
        operation["operationId"]
        for path in checked_in["paths"].values()
        for operation in path.values()
    }
    assert set(COMMAND_METHODS.values()) <= operations
    assert {"get_restaurant", "get_booking", "get_hold", "get_day", "members"} <= operations


def test_nothing_imports_fastapi_unless_the_http_service_is_used() -> None:
    probe = (
        "import sys\n"
        "import seatledger.application as api\n"
        "from seatledger.application import cli\n"
        "cli.build_parser()\n"
        "[getattr(api, name) for name in api.__all__]\n"
        "loaded = sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
