"""The queries as ``GET`` routes under the restaurant (the same tenancy check as commands).

``load_day`` (the aggregate itself) and ``catch_up_projections`` (a maintenance call) stay
in-process: they are not part of the HTTP surface.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime

from seatledger.application.http.access import CALLER, Caller
from seatledger.application.http.problems import PROBLEM_RESPONSES
from seatledger.application.http.served import Served
from seatledger.application.results import (
    BookingView,
    DayView,
    HoldView,
    Member,
    RestaurantView,
)
from seatledger.domain.values import Window
from seatledger.projections.availability import Availability

BOOKING_ID = Path(min_length=1, max_length=200)


def query_router(service: Served) -> APIRouter:
    router = APIRouter(prefix="/restaurants/{restaurant_id}", tags=["queries"])

    @router.get(
        "",
        response_model=RestaurantView,
        operation_id="get_restaurant",
        responses=PROBLEM_RESPONSES,
    )
    def get_restaurant(
        who: Caller = CALLER,
    ) -> RestaurantView:
        """The restaurant: policy and version, zones, tables, adjacency."""
        return service.get_restaurant(who.restaurant_id)

    @router.get(
        "/bookings/{booking_id}",
        response_model=BookingView,
        operation_id="get_booking",
        responses=PROBLEM_RESPONSES,
    )
    def get_booking(booking_id: str = BOOKING_ID, who: Caller = CALLER) -> BookingView:
        """One booking: window, status, tables."""
        return service.get_booking(who.restaurant_id, booking_id)

    @router.get(
        "/bookings/{booking_id}/members",
        response_model=list[Member],
        operation_id="members",
        responses=PROBLEM_RESPONSES,
    )
    def members(booking_id: str = BOOKING_ID, who: Caller = CALLER) -> list[Member]:
        """The booking's rows in the members read model (what other readers see)."""
        return service.members(who.restaurant_id, booking_id)

    @router.get(
        "/holds/{hold_id}",
        response_model=HoldView,
        operation_id="get_hold",
        responses=PROBLEM_RESPONSES,
    )
    def get_hold(
        hold_id: str = Path(min_length=1, max_length=200),
        who: Caller = CALLER,
    ) -> HoldView:
        """One hold (a live hold past its expiry reads ``expired``)."""
        return service.get_hold(who.restaurant_id, hold_id)

    @router.get(
        "/days/{service_date}",
        response_model=DayView,
        operation_id="get_day",
        responses=PROBLEM_RESPONSES,
    )
    def get_day(service_date: date, who: Caller = CALLER) -> DayView:
        """Every booking and hold of one service day."""
        return service.get_day(who.restaurant_id, service_date)

    @router.get(
        "/tables/{table_id}/availability",
        response_model=Availability,
        operation_id="table_availability",
        responses=PROBLEM_RESPONSES,
    )
    def table_availability(
        start: AwareDatetime,
        end: AwareDatetime,
        table_id: str = Path(min_length=1, max_length=200),
        exclude_booking_id: str | None = Query(default=None, min_length=1, max_length=200),
        who: Caller = CALLER,
    ) -> Availability:
        """Whether the table is free of other bookings' assignments in ``[start, end)``."""
        return service.table_availability(
            who.restaurant_id, table_id, Window(start=start, end=end), exclude_booking_id
        )

    return router
