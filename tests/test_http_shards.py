"""The HTTP service over two shards on two real PostgreSQL servers (the shared one and the
run's throwaway second one, ``tests/second_server.py``): r1 lives on shard a, r2 on shard b.

Commands land on their restaurant's shard (checked through each shard's own service), a key
reaches nothing on another shard, RESTAURANT_MOVING is a 503 with Retry-After, ``/readyz``
asks every shard and names the one that does not answer, and ``seatledger serve`` routes
when ``SEATLEDGER_SHARDS`` is set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from seatledger.application.errors import InfrastructureCode
from seatledger.application.http import create_app
from seatledger.application.settings import Settings
from seatledger.application.shards.config import split_url
from seatledger.application.shards.fence import FENCES
from seatledger.application.shards.router import ShardedService
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from tests.http_support import KEYS, auth, body, running, write_keys
from tests.support import booking, floor
from tests.test_http_parallel import serving

pytestmark = pytest.mark.postgres

MANAGER_R1, MANAGER_R2 = "secret-manager-r1", "secret-manager-r2"


def problem(response: httpx.Response, code: str, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    found: dict[str, object] = response.json()
    assert found["code"] == code
    return found


def test_http_routes_every_request_to_its_restaurants_shard(
    sharded: Settings, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    write_keys(keys, KEYS)
    with (
        ShardedService(sharded) as router,
        running(create_app(router, keys)) as url,
        httpx.Client(base_url=url) as client,
    ):
        for secret, restaurant_id, party in ((MANAGER_R1, "r1", 2), (MANAGER_R2, "r2", 4)):
            for path, payload in (
                ("create-restaurant", body(floor(restaurant_id))),
                ("register-booking", {**body(booking("b1")), "party_size": party}),
            ):
                sent = client.post(
                    f"/restaurants/{restaurant_id}/commands/{path}",
                    json=payload,
                    headers=auth(secret),
                )
                assert sent.status_code == 200, sent.text
        r2_only = client.post(
            "/restaurants/r2/commands/register-booking",
            json=body(booking("only-on-b")),
            headers=auth(MANAGER_R2),
        )
        assert r2_only.status_code == 200, r2_only.text

        # each command landed on its restaurant's shard, and only there
        a, b = router.services["a"], router.services["b"]
        assert a.get_booking("r1", "b1").party_size == 2
        assert b.get_booking("r2", "b1").party_size == 4
        for service, elsewhere in ((a, "r2"), (b, "r1")):
            with pytest.raises(SeatLedgerError) as caught:
                service.get_restaurant(elsewhere)
            assert caught.value.code == ErrorCode.RESTAURANT_NOT_FOUND
        got = client.get("/restaurants/r2/bookings/b1", headers=auth(MANAGER_R2))
        assert got.json()["party_size"] == 4

        # tenancy across shards: r2's ids are nowhere for r1, r2 itself is forbidden
        r1 = auth(MANAGER_R1)
        problem(
            client.get("/restaurants/r1/bookings/only-on-b", headers=r1), "BOOKING_NOT_FOUND", 404
        )
        cancel = client.post(
            "/restaurants/r1/commands/cancel-booking", json={"booking_id": "only-on-b"}, headers=r1
        )
        problem(cancel, "BOOKING_NOT_FOUND", 404)
        problem(client.get("/restaurants/r2", headers=r1), "TENANT_FORBIDDEN", 403)
        assert b.get_booking("r2", "only-on-b").status == "pending"  # untouched

        assert client.get("/readyz").json() == {"status": "ready"}

        # a switch in progress: 503 RESTAURANT_MOVING with Retry-After, reads go on
        fence = sql.Identifier(router.shard_settings["b"].postgres_schema, FENCES)
        b_url = split_url(sharded.shards["b"])[0]
        with psycopg.connect(b_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (restaurant_id, state, target) VALUES ('r2', 'moving', 'a')"
                ).format(fence)
            )
            refused = client.post(
                "/restaurants/r2/commands/register-booking",
                json=body(booking("b2")),
                headers=auth(MANAGER_R2),
            )
            moving = problem(refused, str(InfrastructureCode.RESTAURANT_MOVING), 503)
            assert moving["details"] == {"restaurant_id": "r2", "shard": "b"}
            assert refused.headers["Retry-After"] == "2"
            assert client.get("/restaurants/r2", headers=auth(MANAGER_R2)).status_code == 200
            conn.execute(sql.SQL("DELETE FROM {}").format(fence))

            # shard b's store goes away: not ready, and the answer names shard b
            conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(
                    sql.Identifier(router.shard_settings["b"].postgres_schema)
                )
            )
        lost = client.get("/readyz")
        details = problem(lost, "STORAGE_UNAVAILABLE", 503)["details"]
        assert isinstance(details, dict) and details["shard"] == "b"
        assert lost.headers["Retry-After"] == "5"
        assert client.get("/healthz").status_code == 200


def test_seatledger_serve_routes_across_shards(sharded: Settings, tmp_path: Path) -> None:
    with ShardedService(sharded):  # the shards' tables and the stored map, as after a migrate
        pass
    env = {
        **os.environ,
        "SEATLEDGER_SHARDS": json.dumps(sharded.shards),
        "SEATLEDGER_SHARD_MAP": json.dumps(sharded.shard_map),
        "SEATLEDGER_PROJECTION_MODE": "in_process",
    }
    with serving(tmp_path, env) as base_url, httpx.Client(base_url=base_url) as client:
        for secret, restaurant_id in ((MANAGER_R1, "r1"), (MANAGER_R2, "r2")):
            created = client.post(
                f"/restaurants/{restaurant_id}/commands/create-restaurant",
                json=body(floor(restaurant_id)),
                headers=auth(secret),
            )
            assert created.status_code == 200, created.text
    with ShardedService(sharded) as router:
        for shard, here, elsewhere in (("a", "r1", "r2"), ("b", "r2", "r1")):
            assert router.services[shard].get_restaurant(here).restaurant_id == here
            with pytest.raises(SeatLedgerError):
                router.services[shard].get_restaurant(elsewhere)
