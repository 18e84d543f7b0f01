"""``seatledger serve``: one service (with shards, a ``ShardedService``), one uvicorn server,
until SIGTERM or SIGINT."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from seatledger.application.http.app import create_app, openapi_document
from seatledger.application.http.auth import KeyRing
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.shards.router import ShardedService
from seatledger.application.telemetry import Telemetry


def serve(settings: Settings, *, host: str, port: int, keys_file: Path, log_level: str) -> None:
    """Load the keys (a bad file stops here, before the store is opened), open the store,
    serve. With ``SEATLEDGER_SHARDS`` the store is every shard, each request routed to its
    restaurant's. SIGTERM or SIGINT: uvicorn stops accepting and finishes the requests in
    flight, then the service closes and the process exits 0."""
    telemetry = Telemetry.configured(otel=settings.otel_enabled)
    keys = KeyRing(keys_file, telemetry)
    opened = ShardedService if settings.shards else AssignmentService
    with opened(settings, telemetry=telemetry) as service:
        config = uvicorn.Config(
            create_app(service, keys), host=host, port=port, log_level=log_level
        )
        with _signals_end_the_server_only():
            uvicorn.Server(config).run()


@contextmanager
def _signals_end_the_server_only() -> Iterator[None]:
    """uvicorn re-raises the stop signal once it has shut down, with the handlers it found
    restored: make those no-ops, so the signal ends the server and not, before the service
    is closed, the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def openapi_json() -> str:
    """The OpenAPI document as checked in (``docs/openapi.json``)."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
