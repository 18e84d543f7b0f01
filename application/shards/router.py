"""``ShardedService``: the service API of :class:`AssignmentService`, routed by restaurant.

Every command and query names its restaurant (a command's ``restaurant_id``, a query's first
argument), and a restaurant lives on one shard, so each call goes to that shard's own
``AssignmentService`` (its store, read models and runners) unchanged. The call runs inside
the restaurant's fence on that shard (:mod:`.fence`): a command meeting a switch is refused
with RESTAURANT_MOVING (retryable, nothing written); a call meeting a finished move re-reads
the map and goes to the new shard. A restaurant's ids never reach another shard's data: a
booking, hold or table of restaurant A asked for through restaurant B is looked for on B's
shard, where A has nothing (``tests/test_shards.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from seatledger.application.clock import Clock, SystemClock
from seatledger.application.commands import COMMAND_METHODS, Command
from seatledger.application.errors import (
    STORAGE_ERRORS,
    InfrastructureCode,
    InfrastructureError,
    RestaurantMovingError,
)
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.shards.config import control_shard, shard_settings
from seatledger.application.shards.fence import Fence, ensure_shard_tables
from seatledger.application.shards.map import CachedMap, MapStore, ShardMap
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import InvalidInputError, SeatLedgerError

T = TypeVar("T")
COMMAND_NAMES = frozenset(COMMAND_METHODS.values())
#: The queries routed by their first argument, the restaurant id.
QUERY_NAMES = frozenset(
    {
        "get_restaurant",
        "get_booking",
        "get_hold",
        "get_day",
        "members",
        "table_availability",
        "is_table_available",
        "floor_at",
        "booking_timeline",
        "floor_diff",
        "load_day",
    }
)
#: A call that meets a finished move follows the map this many times before it gives up.
_HOPS = 3


class ShardedService:
    """The routing service: ``service.register_booking(...)``, ``service.get_day(...)`` and
    every other public method of :class:`AssignmentService`, on the restaurant's shard."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        if not settings.shards:
            raise InvalidInputError(
                "a sharded service needs shards (SEATLEDGER_SHARDS)",
                details={"errors": [{"field": "shards", "error": "empty"}]},
            )
        self.settings = settings
        self.telemetry = telemetry or Telemetry.configured(otel=settings.otel_enabled)
        self.clock: Clock = clock or SystemClock()  # one clock for every shard
        self.shard_settings = {name: shard_settings(settings, name) for name in settings.shards}
        self.services: dict[str, AssignmentService] = {}
        self.fences: dict[str, Fence] = {}
        try:
            for name, shard in self.shard_settings.items():
                self.services[name] = AssignmentService(
                    shard, clock=self.clock, telemetry=self.telemetry
                )
                _storage(shard, functools.partial(ensure_shard_tables, shard))
                self.fences[name] = Fence(shard)
            control = self.shard_settings[control_shard(settings)]
            self.map = _storage(
                control,
                lambda: CachedMap(MapStore(settings), settings.shard_map_refresh_seconds),
            )
        except BaseException:
            self.close()
            raise
        missing = self.map.current().shards_named() - set(settings.shards)
        if missing:
            self.close()
            raise InvalidInputError(
                f"the stored shard map names shards the settings lack: {sorted(missing)}",
                details={"errors": [{"field": "shards", "error": f"add {sorted(missing)}"}]},
            )

    # --- where a restaurant lives ---

    def shard_of(self, restaurant_id: str) -> str:
        return self.map.current().shard_for(restaurant_id)

    def service_for(self, restaurant_id: str) -> AssignmentService:
        """The restaurant's shard's service (audits, tools; calls through it skip the fence)."""
        return self.services[self.shard_of(restaurant_id)]

    def current_map(self) -> ShardMap:
        return self.map.current()

    def check_ready(self) -> None:
        """Every shard's event store answers (``/readyz``); else STORAGE_UNAVAILABLE naming
        the first shard that does not."""
        for name, service in self.services.items():
            try:
                service.recorder.max_notification_id()
            except Exception as exc:
                raise InfrastructureError(
                    InfrastructureCode.STORAGE_UNAVAILABLE,
                    f"the event store of shard {name} does not answer: {type(exc).__name__}",
                    details={
                        "operation": "readyz",
                        "shard": name,
                        "store": service.settings.describe_store(),
                        "error": str(exc).strip(),
                    },
                ) from exc

    # --- the routed API ---

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name in COMMAND_NAMES:
            return functools.partial(self._command, name)
        if name in QUERY_NAMES:
            return functools.partial(self._query, name)
        raise AttributeError(name)

    def execute(self, command: Command) -> Any:
        """Any command model, through its routed method."""
        method_name = COMMAND_METHODS.get(type(command))
        if method_name is None:
            return self.services[control_shard(self.settings)].execute(command)
        return self._command(method_name, command)

    def catch_up_projections(self) -> int:
        """Bring every shard's read models up to date now; events applied in all."""
        return sum(service.catch_up_projections() for service in self.services.values())

    def _command(self, name: str, command: Any) -> Any:
        restaurant_id = _restaurant_of(command)
        if restaurant_id is None:  # the shard's own validation answers INVALID_INPUT
            return getattr(self.services[control_shard(self.settings)], name)(command)
        return self._route(restaurant_id, name, (command,), {}, write=True)

    def _query(self, name: str, *args: Any, **kwargs: Any) -> Any:
        restaurant_id = args[0] if args else kwargs.get("restaurant_id")
        if not isinstance(restaurant_id, str):
            return getattr(self.services[control_shard(self.settings)], name)(*args, **kwargs)
        return self._route(restaurant_id, name, args, kwargs, write=False)

    def _route(
        self,
        restaurant_id: str,
        name: str,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        write: bool,
    ) -> Any:
        for _ in range(_HOPS):
            shard = self.shard_of(restaurant_id)
            fence = self.fences[shard]
            try:
                with fence.held(restaurant_id) as state:
                    if state == "moving" and write:
                        raise RestaurantMovingError(
                            f"restaurant {restaurant_id} is being moved to another shard",
                            details={"restaurant_id": restaurant_id, "shard": shard},
                        )
                    if state != "moved":
                        return getattr(self.services[shard], name)(*args, **kwargs)
            except SeatLedgerError:
                raise
            except STORAGE_ERRORS as exc:
                raise _unavailable(fence.settings, exc) from exc
            self.map.refresh()  # it moved: the map has its new shard
        raise RestaurantMovingError(
            f"restaurant {restaurant_id} moved, and the map does not say where yet",
            details={"restaurant_id": restaurant_id},
        )

    # --- lifetime ---

    def close(self) -> None:
        for fence in self.fences.values():
            fence.close()
        for service in self.services.values():
            service.close()
        self.fences, self.services = {}, {}

    def __enter__(self) -> ShardedService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _restaurant_of(command: Any) -> str | None:
    if isinstance(command, BaseModel):
        value = getattr(command, "restaurant_id", None)
    elif isinstance(command, Mapping):
        value = command.get("restaurant_id")
    else:
        value = None
    return value if isinstance(value, str) else None


def _storage(settings: Settings, step: Callable[[], T]) -> T:
    try:
        return step()
    except STORAGE_ERRORS as exc:
        raise _unavailable(settings, exc) from exc


def _unavailable(settings: Settings, exc: Exception) -> InfrastructureError:
    return InfrastructureError(
        InfrastructureCode.STORAGE_UNAVAILABLE,
        f"a shard's database failed ({settings.describe_store()}): {type(exc).__name__}",
        details={"store": settings.describe_store(), "error": str(exc).strip()},
    )
