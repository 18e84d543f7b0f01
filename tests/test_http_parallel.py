"""The HTTP service under parallel load on the real stores, and ``seatledger serve`` itself.

24 clients, released together, race for the same tables of one service day: half assign M1
by hand, half ask auto-assign. Whatever the interleaving, every final answer is a result or the
domain's refusal, and no table ends up in two overlapping bookings. A writer that lost the
save on every re-run gets the retryable 503 ``CONCURRENCY_CONFLICT`` (nothing written); any
other server error fails the test.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from seatledger.application import AssignmentService, Settings
from seatledger.application.http import create_app
from tests.http_support import KEYS, auth, body, running, write_keys
from tests.support import DAY, booking, floor

PARALLEL = 24
MANAGER, HOST = "secret-manager-r1", "secret-host-r1"
#: bounds for a process to start or stop (not assertions about speed)
START_SECONDS, STOP_SECONDS = 60, 30


def store_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        return Settings(
            persistence="postgres", postgres_schema=schema, projection_mode="in_process"
        )
    return Settings(persistence="sqlite", sqlite_path=tmp_path / "http.db")


@pytest.fixture
def base_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    keys = tmp_path / "keys.json"
    write_keys(keys, KEYS)
    with (
        AssignmentService(store_settings(backend, request, tmp_path)) as service,
        running(create_app(service, keys)) as url,
    ):
        yield url


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    start = max(datetime.fromisoformat(a["start"]), datetime.fromisoformat(b["start"]))
    end = min(datetime.fromisoformat(a["end"]), datetime.fromisoformat(b["end"]))
    return start < end


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_parallel_requests_for_the_same_tables_never_double_book(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers=auth(HOST), timeout=60) as client:
        created = client.post(
            "/restaurants/r1/commands/create-restaurant",
            json=body(floor()),
            headers=auth(MANAGER),
        )
        assert created.status_code == 200, created.text
        for n in range(PARALLEL):
            registered = client.post(
                "/restaurants/r1/commands/register-booking", json=body(booking(f"b{n}"))
            )
            assert registered.status_code == 200, registered.text

    gate = threading.Barrier(PARALLEL)

    def race(n: int) -> tuple[str, httpx.Response]:
        if n % 2:
            path, payload = "assign-tables", {"booking_id": f"b{n}", "table_ids": ["M1"]}
        else:
            path, payload = "auto-assign", {"booking_id": f"b{n}"}
        with httpx.Client(base_url=base_url, headers=auth(HOST), timeout=120) as client:
            gate.wait()
            return f"b{n}", client.post(f"/restaurants/r1/commands/{path}", json=payload)

    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = dict(pool.map(race, range(PARALLEL)))

    refusals = {}
    for booking_id, response in answers.items():
        if response.status_code != 200:
            refusals[booking_id] = (response.status_code, response.json().get("code"))
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1", response.text
    # losers get the domain's answer, or the retryable answer of a writer that lost the save
    # on every re-run; any other server error (e.g. STORAGE_UNAVAILABLE) is a failure
    assert set(refusals.values()) <= {
        (409, "ASSIGNMENT_CONFLICT"),
        (409, "HOLD_CONFLICT"),
        (503, "CONCURRENCY_CONFLICT"),
    }, refusals

    with httpx.Client(base_url=base_url, headers=auth(HOST)) as client:
        day = client.get(f"/restaurants/r1/days/{DAY.isoformat()}").json()
    seated = {b["booking_id"]: b for b in day["bookings"] if b["table_ids"]}
    for a, b in itertools.combinations(seated.values(), 2):
        if overlaps(a["window"], b["window"]):
            shared = set(a["table_ids"]) & set(b["table_ids"])
            assert not shared, (a["booking_id"], b["booking_id"], shared)
    assert sum("M1" in b["table_ids"] for b in seated.values()) <= 1
    assert seated  # the race made progress
    # every booking the answers call seated is seated, and no other
    answered = {
        booking_id
        for booking_id, response in answers.items()
        if response.status_code == 200
        and (response.json().get("table_ids") or response.json().get("outcome") == "assigned")
    }
    assert answered == set(seated)


# --- seatledger serve -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seatledger() -> str:
    found = shutil.which("seatledger", path=str(Path(sys.executable).parent))
    assert found, "the seatledger console script is not installed beside this Python"
    return found


@contextmanager
def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``seatledger serve`` in a subprocess on a free 127.0.0.1 port, once it is ready (its
    base URL); at the end of the block it must stop on SIGTERM with exit code 0."""
    keys = tmp_path / "keys.json"
    write_keys(keys, KEYS)
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [seatledger(), "serve", "--port", str(port), "--keys", str(keys)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base_url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "seatledger serve did not become ready"
            time.sleep(0.1)
        yield base_url
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_seatledger_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SEATLEDGER_PERSISTENCE": "sqlite",
        "SEATLEDGER_SQLITE_PATH": str(tmp_path / "served.db"),
    }
    with (
        serving(tmp_path, env) as base_url,
        httpx.Client(base_url=base_url, headers=auth(MANAGER)) as client,
    ):
        assert client.post(
            "/restaurants/r1/commands/create-restaurant", json=body(floor())
        ).is_success
        assert client.post(
            "/restaurants/r1/commands/register-booking", json=body(booking("b1"))
        ).is_success
        seated = client.post("/restaurants/r1/commands/auto-assign", json={"booking_id": "b1"})
        assert seated.json()["outcome"] == "assigned"
        assert client.get("/restaurants/r1").status_code == 200
        assert client.get("/restaurants/r1", headers={"Authorization": ""}).status_code == 401


def test_seatledger_serve_refuses_a_broken_keys_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": [{"key_id": "k", "sha256": "not-a-hash"}]}')
    done = subprocess.run(
        [seatledger(), "serve", "--port", str(free_port()), "--keys", str(keys)],
        capture_output=True,
        check=False,
        text=True,
        timeout=STOP_SECONDS,
        env={**os.environ, "SEATLEDGER_SQLITE_PATH": str(tmp_path / "never.db")},
    )
    assert done.returncode == 2
    assert "keys file" in done.stderr and "sha256" in done.stderr
    assert not (tmp_path / "never.db").exists()  # refused before the store was opened


@pytest.mark.postgres
def test_a_lost_store_is_503_with_retry_after(postgres_schema: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    write_keys(keys, KEYS)
    settings = Settings(
        persistence="postgres", postgres_schema=postgres_schema, projection_mode="off"
    )
    with (
        AssignmentService(settings) as service,
        running(create_app(service, keys)) as url,
        httpx.Client(base_url=url, headers=auth(MANAGER)) as client,
    ):
        assert client.post(
            "/restaurants/r1/commands/create-restaurant", json=body(floor())
        ).is_success
        assert client.get("/readyz").json() == {"status": "ready"}
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(postgres_schema)))

        for response in (
            client.get("/readyz"),
            client.post("/restaurants/r1/commands/register-booking", json=body(booking("b1"))),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "STORAGE_UNAVAILABLE"
            assert response.headers["Retry-After"] == "5"
        assert client.get("/healthz").status_code == 200  # the process itself is fine
