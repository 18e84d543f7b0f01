"""Queries: the pydantic models a query's arguments are validated into.

A query method keeps its plain signature (``get_booking("r1", "b1")``); the boundary binds the
arguments to the query's model before the method runs, so a query gets exactly the checks a
command gets: types, lengths and the input contract (docs/api.md, *Input contract*). Bad
arguments are ``INVALID_INPUT`` with the field paths, never a storage or internal error.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from seatledger.application.inputs import enforce
from seatledger.domain.values import Window

Id = str


class Query(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", revalidate_instances="always")

    @model_validator(mode="after")
    def _input_contract(self) -> Query:
        enforce(self)
        return self


class CatchUpProjections(Query):
    """No arguments: anything passed is bad input."""


class RestaurantQuery(Query):
    restaurant_id: Id = Field(min_length=1, max_length=200)


class GetRestaurant(RestaurantQuery):
    pass


class GetBooking(RestaurantQuery):
    booking_id: Id = Field(min_length=1, max_length=200)


class GetMembers(GetBooking):
    pass


class GetHold(RestaurantQuery):
    hold_id: Id = Field(min_length=1, max_length=200)


class GetDay(RestaurantQuery):
    service_date: date


class LoadDay(GetDay):
    pass


class TableAvailability(RestaurantQuery):
    table_id: Id = Field(min_length=1, max_length=200)
    window: Window
    exclude_booking_id: Id | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("window", mode="before")
    @classmethod
    def _revalidate(cls, value: Any) -> Any:
        """A ``Window`` instance is checked again (one built with ``model_construct`` could
        carry naive or non-UTC instants)."""
        return dict(value) if isinstance(value, Window) else value


class GetFloorAt(GetDay):
    """The floor at an instant or at a log position (at most one of them; neither: now)."""

    at: AwareDatetime | None = None
    position: int | None = Field(default=None, ge=0)


class GetFloorDiff(GetDay):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> GetFloorDiff:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self
