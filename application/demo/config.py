"""The demo's restaurant and day: who works, how busy it is, and the shares that shape it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from seatledger.application.commands import CreateRestaurant
from seatledger.application.samples import BISTRO_FLOOR
from seatledger.domain.policy import VenuePolicy

#: The demo's restaurant. Its layout aggregate in a database marks the file as a demo database.
RESTAURANT_ID = "demo-bistro"
#: A winter Tuesday: London runs on UTC, so local and stored instants read the same.
SERVICE_DATE = date(2026, 11, 24)
TIMEZONE = "Europe/London"
DEFAULT_DB_PATH = Path("seatledger-demo.db")
DEFAULT_SEED = 42

HOSTS = ("host-ana", "host-ben", "host-cleo")
MANAGER = "manager-dana"
PARTY_SIZES = (2, 3, 4, 5, 6, 7, 8)
PARTY_WEIGHTS = (40, 12, 26, 7, 8, 4, 3)
#: A coach party: more guests than any table or combination of three seats.
LARGE_GROUP = 14
#: A meal blocks its tables for four to six quarter-hours; the platform fills a quarter-hour
#: up to this share of the active tables.
MAX_MEAL_SLOTS = 6
LOAD_FACTOR = 1.1
#: Most parties are seated by auto-assign; the hosts seat the rest by hand.
AUTO_SHARE = 0.75
#: Of the auto-assigned bookings, these are quoted ahead (a long hold) and confirmed later.
QUOTE_AHEAD_SHARE = 0.8
QUOTE_TTL_SECONDS = 900
#: Quoted bookings whose terminal runs auto-assign with drift retry switched off.
NO_RETRY_SHARE = 0.25


class DemoConfig(BaseModel):
    """How busy the simulated day is (tests use a smaller day)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lunch_bookings: int = Field(default=62, ge=0)
    dinner_bookings: int = Field(default=128, ge=0)
    walk_ins: int = Field(default=16, ge=0)
    #: Requests for a table after the kitchen's last seating: rejected with SERVICE_OVERRUN.
    late_requests: int = Field(default=2, ge=0)
    #: Walk-in groups larger than any table or combination: auto-assign finds NO_CAPACITY.
    large_groups: int = Field(default=1, ge=0)


def demo_floor() -> CreateRestaurant:
    """The demo restaurant: the sample ``BISTRO_FLOOR`` (five zones, 41 tables), set up by
    the manager."""
    return BISTRO_FLOOR.create(
        RESTAURANT_ID,
        name="Demo Bistro",
        policy=VenuePolicy(timezone=TIMEZONE),
        actor_id=MANAGER,
        actor_role="manager",
        command_id="demo-setup",
    )
