"""The sample floors: each one a restaurant the service accepts, shared by tests, workload,
demo and benchmarks, and importable without the testing extra (the demo needs one at runtime).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from seatledger.application.samples import (
    BISTRO_FLOOR,
    GARDEN_FLOOR,
    MEDIUM_FLOOR,
    SMALL_FLOOR,
    SampleFloor,
    grid_floor,
)
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.policy import VenuePolicy

FLOORS = {
    "small": (SMALL_FLOOR, 15),
    "garden": (GARDEN_FLOOR, 3),
    "medium": (MEDIUM_FLOOR, 21),
    "bistro": (BISTRO_FLOOR, 41),
    "grid": (grid_floor(), 100),
}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_a_sample_floor_is_a_restaurant_the_service_accepts(name: str) -> None:
    sample, tables = FLOORS[name]
    with AssignmentService(Settings(persistence="memory")) as service:
        service.create_restaurant(sample.create(f"sample-{name}"))
        view = service.get_restaurant(f"sample-{name}")
    assert len(view.tables) == tables
    assert [t.table_id for t in view.tables] == sorted(t.table_id for t in sample.tables)
    assert len(view.adjacency) == len(sample.adjacency)
    assert {z.zone_id for z in view.zones} == {z.zone_id for z in sample.zones}


def test_create_names_the_restaurant_and_keeps_a_given_command_id() -> None:
    default = SMALL_FLOOR.create("r1")
    named = SMALL_FLOOR.create("r1", name="Chez Nous", command_id="c-1", actor_id="boss")
    assert default.name == "Restaurant r1"
    assert default.command_id != SMALL_FLOOR.create("r1").command_id  # fresh each time
    assert (named.name, named.command_id, named.actor_id) == ("Chez Nous", "c-1", "boss")
    assert named.tables == default.tables and named.adjacency == default.adjacency


def test_view_sorts_edge_ends_as_the_layout_does() -> None:
    sample = SampleFloor(
        zones=GARDEN_FLOOR.zones, tables=GARDEN_FLOOR.tables, adjacency=(("S2", "S1"),)
    )
    view = sample.view("g", policy=VenuePolicy())
    assert view.edges == frozenset({("S1", "S2")})
    assert view.is_connected(("S1", "S2"))
    assert not view.is_connected(("S1", "S3"))


def test_the_samples_import_nothing_test_only() -> None:
    code = (
        "import sys, seatledger.application.samples; "
        "print(sorted(m for m in ('pytest', 'freezegun', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
