"""The HTTP application: ``create_app(service, keys)`` serves an :class:`AssignmentService` or
a ``ShardedService`` (every call routed to the restaurant's shard; :mod:`.served`).

* ``POST /restaurants/{restaurant_id}/commands/<command>``: every command (``command_routes``);
* ``GET /restaurants/{restaurant_id}/...``: the queries (``query_routes``);
* ``GET /healthz`` (the process answers), ``GET /readyz`` (every event store answers);
* ``GET /problems/{code}``: the documentation behind each problem ``type``;
* ``GET /openapi.json``: the schema (checked in as ``docs/openapi.json``).

Endpoints are plain functions: FastAPI runs them in its thread pool, and the service is
built to be shared between threads.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from seatledger.application.http.access import PUBLIC_PATHS, ApiKeyMiddleware
from seatledger.application.http.auth import KeyRing
from seatledger.application.http.command_routes import command_router
from seatledger.application.http.problems import (
    PROBLEM_RESPONSES,
    Problem,
    ProblemType,
    install_problem_handlers,
    problem_type,
)
from seatledger.application.http.query_routes import query_router
from seatledger.application.http.served import Served, served
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings

DESCRIPTION = """\
seatledger's commands and queries over HTTP.

Every request except the probes, this schema and `/problems/*` carries
`Authorization: Bearer <API key>`. A key is bound to restaurants and a role; the actor and role
of every command are the key's (a body naming `actor_id` or `actor_role` is refused). A key used
for another restaurant gets 403 `TENANT_FORBIDDEN` and nothing is read or written.

Errors are problem documents (RFC 9457, `application/problem+json`) carrying the stable `code`,
`details` and `hint`. 429 and 503 (including `CONCURRENCY_CONFLICT`) carry `Retry-After`:
re-send the same command with the same `Idempotency-Key` (its command id) and it is never
applied twice.
"""


class Status(BaseModel):
    status: str


class SeatLedgerApp(FastAPI):
    """FastAPI with the schema's shared parts: the problem document and the bearer scheme."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema:
            return self.openapi_schema
        schema = get_openapi(
            title=self.title,
            version=self.version,
            description=self.description,
            routes=self.routes,
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        components["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "an API key from the service's keys file",
            }
        }
        schema["security"] = [{"apiKey": []}]
        for path, operations in schema["paths"].items():
            if path in PUBLIC_PATHS or path.startswith("/problems/"):
                for operation in operations.values():
                    operation["security"] = []
        self.openapi_schema = schema
        return schema


def create_app(service: AssignmentService | Served, keys: KeyRing | Path) -> FastAPI:
    """The HTTP service of ``service`` (one store, or a ``ShardedService``); ``keys`` is a
    :class:`KeyRing` or its keys file."""
    service = served(service)
    telemetry = service.telemetry
    ring = keys if isinstance(keys, KeyRing) else KeyRing(keys, telemetry)
    app = SeatLedgerApp(
        title="seatledger",
        version=_version(),
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.telemetry = telemetry
    install_problem_handlers(app, service.clock.now)
    app.add_middleware(ApiKeyMiddleware, keys=ring, telemetry=telemetry)

    @app.get("/healthz", response_model=Status, operation_id="healthz", tags=["probes"])
    def healthz() -> Status:
        """The process is up (liveness)."""
        return Status(status="ok")

    @app.get(
        "/readyz",
        response_model=Status,
        operation_id="readyz",
        tags=["probes"],
        responses=PROBLEM_RESPONSES,
    )
    def readyz() -> Status:
        """The event store answers (readiness); 503 ``STORAGE_UNAVAILABLE`` when it does not."""
        service.check_ready()  # with shards, every shard's; details.shard names one that fails
        return Status(status="ready")

    @app.get(
        "/problems/{code}",
        response_model=ProblemType,
        operation_id="problem_type",
        tags=["probes"],
        responses=PROBLEM_RESPONSES,
    )
    def problem(code: str) -> ProblemType:
        """What a problem ``type`` means: its code, title, status, hint and retryability."""
        found = problem_type(code)
        if found is None:
            raise HTTPException(404, f"no problem type {code}")
        return found

    app.include_router(command_router(service))
    app.include_router(query_router(service))
    return app


def openapi_document() -> dict[str, Any]:
    """The schema, without a store or keys (``seatledger serve --print-openapi``)."""
    settings = Settings(persistence="memory", projection_mode="off")
    with AssignmentService(settings) as service:
        return create_app(service, KeyRing(None)).openapi()


def _version() -> str:
    try:
        return version("seatledger")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"
