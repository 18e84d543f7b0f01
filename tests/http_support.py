"""The HTTP service for real in tests: uvicorn on 127.0.0.1 (a free port, a thread of the test
process, so the test can look at the service's store and telemetry), a keys file, and
bodies built from the service tests' command builders."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from seatledger.application.http.auth import hash_key

START_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Key:
    key_id: str
    actor_id: str
    role: str
    restaurants: list[str] | str


#: The keys of the suite's keys file, by the secret a client sends.
KEYS: dict[str, Key] = {
    "secret-manager-r1": Key("manager-r1", "mgr-1", "manager", ["r1"]),
    "secret-host-r1": Key("host-r1", "host-1", "host", ["r1"]),
    "secret-host2-r1": Key("host2-r1", "host-2", "host", ["r1"]),
    "secret-manager-r2": Key("manager-r2", "mgr-2", "manager", ["r2"]),
    "secret-system": Key("system", "sweeper", "system", "*"),
}


def keys_document(keys: Mapping[str, Key]) -> dict[str, Any]:
    return {
        "keys": [
            {
                "key_id": key.key_id,
                "sha256": hash_key(secret),
                "actor_id": key.actor_id,
                "role": key.role,
                "restaurants": key.restaurants,
            }
            for secret, key in keys.items()
        ]
    }


def write_keys(path: Path, keys: Mapping[str, Key] | str) -> None:
    """Replace the keys file atomically (as operators are told to): a new file renamed over
    the old one. A string is written as it is (a broken file)."""
    text = keys if isinstance(keys, str) else json.dumps(keys_document(keys))
    staged = path.with_suffix(".tmp")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def body(command: BaseModel) -> dict[str, Any]:
    """A command model as an HTTP body: without what the path and the key decide."""
    return command.model_dump(
        mode="json", exclude={"restaurant_id", "actor_id", "actor_role", "command_id"}
    )


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS  # a bound, not an assertion
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_SECONDS)
        sock.close()
