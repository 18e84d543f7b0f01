"""Venue policy and block windows.

The policy version hashes the canonical serialisation of the *whole* policy (the source system
hashed only top-level fields, so turn-time and buffer edits never counted as drift).
Local times are interpreted in the restaurant's IANA timezone; durations are added in absolute
time, so windows stay correct across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from seatledger.domain.errors import ErrorCode, InvalidInputError, WindowError
from seatledger.domain.values import Frozen, Window, digest


class TurnBand(Frozen):
    """Parties up to ``max_party_size`` dine for ``minutes``."""

    max_party_size: int = Field(ge=1)
    minutes: int = Field(ge=1, le=24 * 60)


class _TurnBands(Frozen):
    turn_bands: tuple[TurnBand, ...] = Field(min_length=1)

    @field_validator("turn_bands")
    @classmethod
    def _sorted_bands(cls, bands: tuple[TurnBand, ...]) -> tuple[TurnBand, ...]:
        ordered = tuple(sorted(bands, key=lambda band: band.max_party_size))
        sizes = [band.max_party_size for band in ordered]
        if len(set(sizes)) != len(sizes):
            raise ValueError("turn bands must have distinct max_party_size values")
        return ordered

    def dining_minutes(self, party_size: int) -> int:
        """Sizes above the last band use the last band."""
        for band in self.turn_bands:
            if party_size <= band.max_party_size:
                return band.minutes
        return self.turn_bands[-1].minutes


class Service(_TurnBands):
    """A named service such as lunch or dinner, in local wall-clock time, ``[start, end)``."""

    name: str = Field(min_length=1)
    start: time
    end: time
    allow_overrun: bool = False

    @model_validator(mode="after")
    def _start_before_end(self) -> Service:
        if self.end <= self.start:
            raise ValueError(f"service {self.name!r} must end after it starts")
        return self

    def contains(self, local: time) -> bool:
        return self.start <= local < self.end


class FallbackService(_TurnBands):
    """Used for starts outside every service unless the policy is strict; never clamps."""

    name: str = "fallback"


def _bands(*pairs: tuple[int, int]) -> tuple[TurnBand, ...]:
    return tuple(TurnBand(max_party_size=size, minutes=minutes) for size, minutes in pairs)


def _default_services() -> tuple[Service, ...]:
    return (
        Service(
            name="lunch",
            start=time(12, 0),
            end=time(15, 0),
            allow_overrun=True,
            turn_bands=_bands((2, 60), (4, 75), (6, 85), (8, 85)),
        ),
        Service(
            name="dinner",
            start=time(17, 0),
            end=time(22, 0),
            allow_overrun=False,
            turn_bands=_bands((2, 60), (4, 75), (6, 85), (8, 90)),
        ),
    )


def _default_fallback() -> FallbackService:
    return FallbackService(turn_bands=_bands((2, 60), (4, 75), (6, 85), (8, 90)))


class VenuePolicy(Frozen):
    """Everything about a restaurant that decides windows and allocation rules."""

    timezone: str = "Europe/London"
    services: tuple[Service, ...] = Field(default_factory=_default_services, min_length=1)
    pre_buffer_minutes: int = Field(default=0, ge=0, le=240)
    post_buffer_minutes: int = Field(default=5, ge=0, le=240)
    fallback_service: FallbackService = Field(default_factory=_default_fallback)
    strict_services: bool = False
    #: Combinations of more than one table must be connected for parties of at least this size.
    adjacency_required: bool = True
    adjacency_min_party_size: int = Field(default=1, ge=1)
    #: Whether the automated planner may drop the adjacency requirement when nothing else fits.
    adjacency_relaxable: bool = True
    slack_budget: int = Field(default=4, ge=0)
    #: Where one service day ends and the next begins (local time). A booking starting
    #: before it belongs to the previous day's service, and no window may cross it, so every
    #: booking that could share a table in time lives in the same service-day aggregate.
    service_day_starts_at: time = time(5, 0)
    max_combination_size: int = Field(default=3, ge=1, le=8)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long
            raise ValueError(f"unknown IANA timezone {name!r}") from exc
        return name

    @field_validator("services")
    @classmethod
    def _distinct_service_names(cls, services: tuple[Service, ...]) -> tuple[Service, ...]:
        names = [service.name for service in services]
        if len(set(names)) != len(names):
            raise ValueError("service names must be distinct")
        return services

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def version(self) -> str:
        """Hash of the canonical serialisation of every field, nested ones included."""
        return digest(self.model_dump(mode="json"))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy never inherits the cached version: ``update`` may change any field."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("version", None)
        return copied

    def requires_adjacency(self, party_size: int) -> bool:
        return self.adjacency_required and party_size >= self.adjacency_min_party_size

    def service_named(self, name: str) -> Service | None:
        return next((service for service in self.services if service.name == name), None)


class BlockWindow(Frozen):
    """A booking's stored window and how it was derived (kept for audits)."""

    window: Window
    start_at: datetime
    dining_end_at: datetime
    service: str
    #: The service day the booking belongs to (a 00:30 start belongs to the day before).
    service_date: date
    fallback: bool = False
    clamped: bool = False


def local_instant(policy: VenuePolicy, service_date: date, start_time: time) -> datetime:
    """The UTC instant of a local wall-clock time; a time skipped by a DST change is invalid."""
    zone = policy.zone
    naive = datetime.combine(service_date, start_time.replace(tzinfo=None))
    local = naive.replace(tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        raise InvalidInputError(
            f"{service_date} {start_time} does not exist in {policy.timezone} (DST gap)",
            details={"errors": [{"field": "start_time", "error": "nonexistent local time"}]},
        )
    return instant


def block_window(
    policy: VenuePolicy,
    service_date: date,
    start_time: time,
    party_size: int,
    service_name: str | None = None,
) -> BlockWindow:
    """Block = ``[start - pre, start + dining + post)``, clamped to a no-overrun service end."""
    start_at = local_instant(policy, service_date, start_time)
    local_start = start_time.replace(tzinfo=None)
    pre = timedelta(minutes=policy.pre_buffer_minutes)
    post = timedelta(minutes=policy.post_buffer_minutes)

    service: Service | None
    if service_name is not None:
        service = policy.service_named(service_name)
        if service is None:
            raise WindowError(
                ErrorCode.SERVICE_NOT_FOUND,
                f"no service named {service_name!r}",
                details={"service": service_name, "services": [s.name for s in policy.services]},
            )
    else:
        service = next((s for s in policy.services if s.contains(local_start)), None)

    if service is None:
        if policy.strict_services:
            raise WindowError(
                ErrorCode.SERVICE_NOT_FOUND,
                f"{start_time.isoformat(timespec='minutes')} is outside every service",
                details={
                    "start_time": start_time.isoformat(timespec="minutes"),
                    "services": [
                        {"name": s.name, "start": s.start.isoformat(), "end": s.end.isoformat()}
                        for s in policy.services
                    ],
                },
            )
        fallback = policy.fallback_service
        dining_end = start_at + timedelta(minutes=fallback.dining_minutes(party_size))
        return _within_service_day(
            policy,
            service_date,
            start_time,
            BlockWindow(
                window=Window(start=start_at - pre, end=dining_end + post),
                start_at=start_at,
                dining_end_at=dining_end,
                service=fallback.name,
                service_date=service_date,
                fallback=True,
            ),
        )

    dining_end = start_at + timedelta(minutes=service.dining_minutes(party_size))
    block_end = dining_end + post
    clamped = False
    if not service.allow_overrun:
        service_end = local_instant(policy, service_date, service.end)
        if block_end > service_end:
            block_end = service_end
            dining_end = block_end - post
            clamped = True
            if dining_end <= start_at:
                raise WindowError(
                    ErrorCode.SERVICE_OVERRUN,
                    f"a {start_time.isoformat(timespec='minutes')} start leaves no dining time "
                    f"before {service.name} ends at {service.end.isoformat(timespec='minutes')}",
                    details={
                        "service": service.name,
                        "service_end": service.end.isoformat(timespec="minutes"),
                        "start_time": start_time.isoformat(timespec="minutes"),
                        "post_buffer_minutes": policy.post_buffer_minutes,
                    },
                )
    return _within_service_day(
        policy,
        service_date,
        start_time,
        BlockWindow(
            window=Window(start=start_at - pre, end=block_end),
            start_at=start_at,
            dining_end_at=dining_end,
            service=service.name,
            service_date=service_date,
            clamped=clamped,
        ),
    )


def _within_service_day(
    policy: VenuePolicy, calendar_date: date, start_time: time, block: BlockWindow
) -> BlockWindow:
    """Assign the block to its service day and keep it inside that day's boundaries."""
    day_start = policy.service_day_starts_at
    service_date = (
        calendar_date - timedelta(days=1)
        if start_time.replace(tzinfo=None) < day_start
        else calendar_date
    )
    opens = local_instant(policy, service_date, day_start)
    closes = local_instant(policy, service_date + timedelta(days=1), day_start)
    if block.window.start < opens or block.window.end > closes:
        raise WindowError(
            ErrorCode.SERVICE_OVERRUN,
            f"the booking's window {block.window} crosses the service-day boundary at "
            f"{day_start.isoformat(timespec='minutes')}",
            details={
                "service_date": service_date.isoformat(),
                "service_day_starts_at": day_start.isoformat(timespec="minutes"),
                "window": block.window.canonical(),
            },
        )
    return block.model_copy(update={"service_date": service_date})
