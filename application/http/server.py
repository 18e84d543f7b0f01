"""``seatledger serve``: one service, one uvicorn server, until SIGTERM or SIGINT."""

from __future__ import annotations

import json
from pathlib import Path

import uvicorn

from seatledger.application.http.app import create_app, openapi_document
from seatledger.application.http.auth import KeyRing
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry


def serve(settings: Settings, *, host: str, port: int, keys_file: Path, log_level: str) -> None:
    """Load the keys (a bad file stops here, before the store is opened), open the store,
    serve; uvicorn finishes in-flight requests on SIGTERM, then the service closes."""
    telemetry = Telemetry()
    keys = KeyRing(keys_file, telemetry)
    with AssignmentService(settings, telemetry=telemetry) as service:
        config = uvicorn.Config(
            create_app(service, keys), host=host, port=port, log_level=log_level
        )
        uvicorn.Server(config).run()


def openapi_json() -> str:
    """The OpenAPI document as checked in (``docs/openapi.json``)."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
