"""Sample floors: the restaurants the tests, the workload generator, the demo and the
benchmarks set up, each defined once here.

Plain runtime code (the demo needs a floor without the testing extra): it imports nothing
test-only. A :class:`SampleFloor` is only zones, tables and adjacency; it becomes the
``CreateRestaurant`` command a service runs, or a ``FloorView`` the planner reads directly.

    service.create_restaurant(SMALL_FLOOR.create("r1"))
"""

from __future__ import annotations

from dataclasses import dataclass

from seatledger.application.commands import CreateRestaurant
from seatledger.domain.layout import FloorView, Table, Zone, edge
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import ActorRole

__all__ = [
    "BISTRO_FLOOR",
    "GARDEN_FLOOR",
    "MEDIUM_FLOOR",
    "SMALL_FLOOR",
    "SampleFloor",
    "grid_floor",
]


@dataclass(frozen=True)
class SampleFloor:
    """Zones, tables and adjacency, in the order a restaurant is created with them."""

    zones: tuple[Zone, ...]
    tables: tuple[Table, ...]
    adjacency: tuple[tuple[str, str], ...]

    def create(
        self,
        restaurant_id: str,
        *,
        name: str | None = None,
        policy: VenuePolicy | None = None,
        actor_id: str = "owner",
        actor_role: ActorRole = "host",
        command_id: str | None = None,
    ) -> CreateRestaurant:
        """The command creating a restaurant with this floor (named ``Restaurant <id>`` unless
        told; a fresh command id unless told)."""
        command = CreateRestaurant(
            restaurant_id=restaurant_id,
            name=f"Restaurant {restaurant_id}" if name is None else name,
            policy=policy or VenuePolicy(),
            zones=list(self.zones),
            tables=list(self.tables),
            adjacency=list(self.adjacency),
            actor_id=actor_id,
            actor_role=actor_role,
        )
        if command_id is None:
            return command
        return command.model_copy(update={"command_id": command_id})

    def view(
        self, restaurant_id: str, *, policy: VenuePolicy, name: str = "", version: int = 1
    ) -> FloorView:
        """The floor as the planner reads it, without a service (benchmarks)."""
        return FloorView.build(
            restaurant_id=restaurant_id,
            name=name,
            policy=policy,
            zones={z.zone_id: z for z in self.zones},
            tables={t.table_id: t for t in self.tables},
            edges=[edge(a, b) for a, b in self.adjacency],
            version=version,
        )


def _row(prefix: str, first: int, last: int) -> tuple[tuple[str, str], ...]:
    """Adjacency along a row of tables ``<prefix><first>`` .. ``<prefix><last>``."""
    return tuple((f"{prefix}{i}", f"{prefix}{i + 1}") for i in range(first, last))


_MAIN = Zone(zone_id="main", name="Main room")
_PATIO = Zone(zone_id="patio", name="Patio", preference=1)
_BAR = Zone(zone_id="bar", name="Bar", preference=2)

#: The tests' floor, 15 tables. Main: six movable 2-tops in a row, a fixed 4-top, a fixed
#: 6-top; patio: four movable 4-tops in a row, a fixed 2-top; bar: a 2-top and an inactive one.
SMALL_FLOOR = SampleFloor(
    zones=(_MAIN, _PATIO, _BAR),
    tables=(
        *(Table(table_id=f"M{i}", zone_id="main", capacity=2, movable=True) for i in range(1, 7)),
        Table(table_id="M7", zone_id="main", capacity=4),
        Table(table_id="M8", zone_id="main", capacity=6),
        *(Table(table_id=f"P{i}", zone_id="patio", capacity=4, movable=True) for i in range(1, 5)),
        Table(table_id="P5", zone_id="patio", capacity=2),
        Table(table_id="B1", zone_id="bar", capacity=2),
        Table(table_id="B2", zone_id="bar", capacity=2, active=False),
    ),
    adjacency=(*_row("M", 1, 6), *_row("P", 1, 4)),
)

#: A second tenant for the tests: table ids S1..S3 and zone ``garden`` exist on no other floor.
GARDEN_FLOOR = SampleFloor(
    zones=(Zone(zone_id="garden", name="Garden"),),
    tables=tuple(
        Table(table_id=f"S{i}", zone_id="garden", capacity=2, movable=True) for i in (1, 2, 3)
    ),
    adjacency=_row("S", 1, 3),
)

#: The workload generator's floor, 21 tables. Main: eight movable 2-tops in a row, two fixed
#: 4-tops, a fixed 6-top; patio: six movable 4-tops in a row, a fixed 2-top; bar: two 2-tops
#: and an inactive one.
MEDIUM_FLOOR = SampleFloor(
    zones=(_MAIN, _PATIO, _BAR),
    tables=(
        *(Table(table_id=f"M{i}", zone_id="main", capacity=2, movable=True) for i in range(1, 9)),
        Table(table_id="M9", zone_id="main", capacity=4),
        Table(table_id="M10", zone_id="main", capacity=4),
        Table(table_id="M11", zone_id="main", capacity=6),
        *(Table(table_id=f"P{i}", zone_id="patio", capacity=4, movable=True) for i in range(1, 7)),
        Table(table_id="P7", zone_id="patio", capacity=2),
        Table(table_id="B1", zone_id="bar", capacity=2),
        Table(table_id="B2", zone_id="bar", capacity=2),
        Table(table_id="B3", zone_id="bar", capacity=2, active=False),
    ),
    adjacency=(*_row("M", 1, 8), *_row("P", 1, 6)),
)

#: The demo's floor, five zones and 41 tables: rows of movable 2-tops and 4-tops joined by
#: adjacency edges, fixed 4-, 6- and 10-tops, bar stools and one broken (inactive) bar table.
BISTRO_FLOOR = SampleFloor(
    zones=(
        Zone(zone_id="main", name="Main room"),
        Zone(zone_id="window", name="Window", preference=1),
        Zone(zone_id="terrace", name="Heated terrace", preference=2),
        Zone(zone_id="bar", name="Bar", preference=3),
        Zone(zone_id="private", name="Private room", preference=4),
    ),
    tables=(
        *(Table(table_id=f"M{i}", zone_id="main", capacity=2, movable=True) for i in range(1, 11)),
        *(Table(table_id=f"M{i}", zone_id="main", capacity=4) for i in range(11, 17)),
        *(Table(table_id=f"M{i}", zone_id="main", capacity=6, min_party_size=4) for i in (17, 18)),
        *(Table(table_id=f"W{i}", zone_id="window", capacity=2, movable=True) for i in range(1, 7)),
        *(Table(table_id=f"W{i}", zone_id="window", capacity=4) for i in (7, 8, 9)),
        *(
            Table(table_id=f"T{i}", zone_id="terrace", capacity=4, movable=True)
            for i in range(1, 9)
        ),
        *(
            Table(table_id=f"B{i}", zone_id="bar", capacity=2, max_party_size=2)
            for i in range(1, 5)
        ),
        Table(table_id="B5", zone_id="bar", capacity=2, label="wobbly", active=False),
        Table(table_id="P1", zone_id="private", capacity=10, min_party_size=6),
    ),
    adjacency=(*_row("M", 1, 10), *_row("W", 1, 3), *_row("W", 4, 6), *_row("T", 1, 8)),
)


def grid_floor(zones: int = 4, per_zone: int = 25) -> SampleFloor:
    """The benchmarks' large floor (100 tables by default). Each zone ``z<n>``: 15 movable 2-
    and 4-tops on a 3x5 grid of adjacency edges, then ``per_zone - 15`` fixed tables of 2 to
    10 seats (the 10th of zone ``z0`` inactive)."""
    tables: list[Table] = []
    edges: list[tuple[str, str]] = []
    zone_list = [Zone(zone_id=f"z{z}", preference=z) for z in range(zones)]
    for zone in zone_list:
        grid: list[list[str]] = []
        for row in range(3):
            ids = []
            for col in range(5):
                table_id = f"{zone.zone_id}-m{row}{col}"
                ids.append(table_id)
                tables.append(
                    Table(
                        table_id=table_id,
                        zone_id=zone.zone_id,
                        capacity=2 if (row + col) % 3 else 4,
                        movable=True,
                    )
                )
            grid.append(ids)
        for row in range(3):
            for col in range(5):
                if col < 4:
                    edges.append((grid[row][col], grid[row][col + 1]))
                if row < 2:
                    edges.append((grid[row][col], grid[row + 1][col]))
        for index in range(per_zone - 15):
            capacity = (4, 4, 6, 6, 8, 4, 6, 10, 4, 2)[index % 10]
            tables.append(
                Table(
                    table_id=f"{zone.zone_id}-f{index}",
                    zone_id=zone.zone_id,
                    capacity=capacity,
                    min_party_size=capacity - 2 if capacity >= 6 else None,
                    active=index != 9 or zone.zone_id != "z0",
                )
            )
    return SampleFloor(zones=tuple(zone_list), tables=tuple(tables), adjacency=tuple(edges))
