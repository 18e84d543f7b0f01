"""Enforcement: every request is authenticated before anything else is read, then each
operation checks the restaurant in its path and the key's role before it reaches the service.

Authentication is an ASGI middleware, so a request without a valid key is refused (401)
before its body is even parsed. The probes (``/healthz``, ``/readyz``), the OpenAPI document
and the problem-type pages are public: they carry no tenant data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Depends, Path, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from seatledger.application.http.auth import KeyRing, Principal, allowed_roles
from seatledger.application.http.problems import AccessCode, AccessError, access_response
from seatledger.application.telemetry import Telemetry

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
PUBLIC_PREFIXES = ("/problems/",)
_PRINCIPAL = "seatledger_principal"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class ApiKeyMiddleware:
    """Resolves ``Authorization: Bearer <key>`` to a :class:`Principal` or answers 401."""

    def __init__(self, app: ASGIApp, keys: KeyRing, telemetry: Telemetry) -> None:
        self.app = app
        self.keys = keys
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            await self._refuse(scope, receive, send, "missing", "no API key: send a bearer key")
            return
        principal = self.keys.authenticate(key)
        if principal is None:
            await self._refuse(scope, receive, send, "unknown_key", "the API key is not valid")
            return
        scope.setdefault("state", {})[_PRINCIPAL] = principal
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, reason: str, message: str
    ) -> None:
        self.telemetry.emit("auth.failed", level=logging.WARNING, reason=reason, path=scope["path"])
        response = access_response(AccessError(AccessCode.UNAUTHENTICATED, message))
        await response(scope, receive, send)


@dataclass(frozen=True)
class Caller:
    """An authenticated principal acting on the restaurant named in the path."""

    principal: Principal
    restaurant_id: str


def authorize(request: Request, restaurant_id: str = Path(min_length=1, max_length=200)) -> Caller:
    """The dependency of every restaurant route: tenancy first, then the key's role. The
    operation is the route's name (the service method it calls)."""
    operation = str(getattr(request.scope.get("route"), "name", request.url.path))
    telemetry: Telemetry = request.app.state.telemetry
    principal = getattr(request.state, _PRINCIPAL, None)
    if not isinstance(principal, Principal):  # a route the middleware did not guard
        raise AccessError(AccessCode.UNAUTHENTICATED, "no API key: send a bearer key")
    if not principal.may_act_for(restaurant_id):
        telemetry.emit(
            "tenancy.violation",
            level=logging.ERROR,
            operation=operation,
            restaurant_id=restaurant_id,
            key_id=principal.key_id,
            actor_id=principal.actor_id,
            source="http",
        )
        raise AccessError(
            AccessCode.TENANT_FORBIDDEN,
            f"this key may not act for restaurant {restaurant_id}",
            details={"restaurant_id": restaurant_id},
        )
    roles = allowed_roles(operation)
    if principal.role not in roles:
        telemetry.emit(
            "auth.role_denied",
            level=logging.WARNING,
            operation=operation,
            restaurant_id=restaurant_id,
            key_id=principal.key_id,
            role=principal.role,
        )
        raise AccessError(
            AccessCode.ROLE_FORBIDDEN,
            f"role {principal.role} may not run {operation}",
            details={
                "operation": operation,
                "role": principal.role,
                "allowed_roles": sorted(roles),
            },
        )
    return Caller(principal, restaurant_id)


#: ``who: Caller = CALLER`` in a route under ``/restaurants/{restaurant_id}``.
CALLER = Depends(authorize)
