"""The floor of one restaurant: zones, tables, undirected adjacency and the venue policy.

``FloorLayout`` is the event-sourced aggregate (its events are the layout history);
``FloorView`` is an immutable picture of it at one version, which the assignment aggregate and
the planner read. Snapshots of a table set are what a hold records and drift compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from seatledger.domain.aggregate import Aggregate, CreationEvent, DomainEvent, Stamp
from seatledger.domain.errors import AllocationError, ErrorCode, InvalidInputError, NotFoundError
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.values import Frozen, derive_id, digest, sorted_unique

Edge = tuple[str, str]


def edge(a: str, b: str) -> Edge:
    """Undirected edges are stored with their ends sorted."""
    return (a, b) if a <= b else (b, a)


class Zone(Frozen):
    zone_id: str = Field(min_length=1)
    name: str = ""
    #: Lower is preferred by the planner when everything else ties.
    preference: int = 0


class Table(Frozen):
    table_id: str = Field(min_length=1)
    zone_id: str = Field(min_length=1)
    capacity: int = Field(ge=1)
    label: str = ""
    min_party_size: int | None = Field(default=None, ge=1)
    max_party_size: int | None = Field(default=None, ge=1)
    movable: bool = False
    active: bool = True

    @model_validator(mode="after")
    def _party_range(self) -> Table:
        if (
            self.min_party_size is not None
            and self.max_party_size is not None
            and self.min_party_size > self.max_party_size
        ):
            raise ValueError("min_party_size must not exceed max_party_size")
        return self


class TableFacts(Frozen):
    """What drift compares per held table."""

    capacity: int
    zone_id: str
    movable: bool
    active: bool


class AdjacencySnapshot(Frozen):
    edges: tuple[Edge, ...]
    hash: str


class TableSetSnapshot(Frozen):
    """The layout and policy facts a hold was based on."""

    policy_version: str
    zone_ids: tuple[str, ...]
    adjacency: AdjacencySnapshot
    tables: dict[str, TableFacts]


def layout_id(restaurant_id: str) -> UUID:
    return derive_id("layout", restaurant_id)


@dataclass(frozen=True)
class FloorView:
    """An immutable picture of a restaurant's floor at one layout version."""

    restaurant_id: str
    name: str
    policy: VenuePolicy
    zones: Mapping[str, Zone]
    tables: Mapping[str, Table]
    edges: frozenset[Edge]
    version: int
    _neighbours: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        *,
        restaurant_id: str,
        name: str,
        policy: VenuePolicy,
        zones: Mapping[str, Zone],
        tables: Mapping[str, Table],
        edges: Iterable[Edge],
        version: int,
    ) -> FloorView:
        edge_set = frozenset(edges)
        neighbours: dict[str, set[str]] = {table_id: set() for table_id in tables}
        for a, b in edge_set:
            neighbours[a].add(b)
            neighbours[b].add(a)
        return cls(
            restaurant_id=restaurant_id,
            name=name,
            policy=policy,
            zones=dict(zones),
            tables=dict(tables),
            edges=edge_set,
            version=version,
            _neighbours={key: frozenset(value) for key, value in neighbours.items()},
        )

    @property
    def policy_version(self) -> str:
        return self.policy.version

    def neighbours(self, table_id: str) -> frozenset[str]:
        return self._neighbours.get(table_id, frozenset())

    def edges_among(self, table_ids: Iterable[str]) -> tuple[Edge, ...]:
        chosen = set(table_ids)
        return tuple(
            sorted(edge(a, b) for a in chosen for b in self.neighbours(a) if b in chosen and a < b)
        )

    def is_connected(self, table_ids: Iterable[str]) -> bool:
        """Every table reachable from every other through edges inside the set."""
        chosen = set(table_ids)
        if len(chosen) <= 1:
            return True
        if len(chosen) <= 3:  # the planner's usual sizes: n-1 distinct edges connect n <= 3
            edges = sum(len(self.neighbours(t) & chosen) for t in chosen) // 2
            return edges >= len(chosen) - 1
        start = min(chosen)
        seen = {start}
        frontier = [start]
        while frontier:
            current = frontier.pop()
            for nxt in self.neighbours(current) & chosen:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        return seen == chosen

    def adjacency_snapshot(self, table_ids: Iterable[str]) -> AdjacencySnapshot:
        edges = self.edges_among(table_ids)
        return AdjacencySnapshot(edges=edges, hash=digest([list(e) for e in edges]))

    def snapshot(self, table_ids: Iterable[str]) -> TableSetSnapshot:
        ids = sorted_unique(table_ids)
        return TableSetSnapshot(
            policy_version=self.policy_version,
            zone_ids=sorted_unique(self.tables[t].zone_id for t in ids if t in self.tables),
            adjacency=self.adjacency_snapshot(ids),
            tables={
                t: TableFacts(
                    capacity=self.tables[t].capacity,
                    zone_id=self.tables[t].zone_id,
                    movable=self.tables[t].movable,
                    active=self.tables[t].active,
                )
                for t in ids
                if t in self.tables
            },
        )

    def require_tables(self, table_ids: Iterable[str]) -> tuple[Table, ...]:
        """The tables, sorted; unknown ids are ``TABLE_NOT_FOUND`` (ids are per restaurant)."""
        ids = sorted_unique(table_ids)
        missing = [t for t in ids if t not in self.tables]
        if missing:
            raise NotFoundError(
                ErrorCode.TABLE_NOT_FOUND,
                f"unknown table(s) {', '.join(missing)} in restaurant {self.restaurant_id}",
                details={"restaurant_id": self.restaurant_id, "tables": missing},
            )
        return tuple(self.tables[t] for t in ids)


# --- events ---------------------------------------------------------------------------------


class LayoutEvent(DomainEvent):
    def apply(self, aggregate: FloorLayout) -> None:
        raise NotImplementedError


class RestaurantCreated(CreationEvent):
    TOPIC: ClassVar[str] = "seatledger.layout.RestaurantCreated"

    restaurant_id: str
    name: str
    policy: VenuePolicy

    def create(self) -> FloorLayout:
        layout = FloorLayout(self.originator_id, self.restaurant_id, self.name, self.policy)
        layout.created_by = self.command_id
        return layout


class ZoneDefined(LayoutEvent):
    TOPIC: ClassVar[str] = "seatledger.layout.ZoneDefined"

    zone: Zone

    def apply(self, aggregate: FloorLayout) -> None:
        aggregate.zones[self.zone.zone_id] = self.zone


class TableDefined(LayoutEvent):
    TOPIC: ClassVar[str] = "seatledger.layout.TableDefined"

    table: Table

    def apply(self, aggregate: FloorLayout) -> None:
        aggregate.tables[self.table.table_id] = self.table


class TablesLinked(LayoutEvent):
    TOPIC: ClassVar[str] = "seatledger.layout.TablesLinked"

    edges: tuple[Edge, ...]

    def apply(self, aggregate: FloorLayout) -> None:
        aggregate.edges.update(self.edges)


class TablesUnlinked(LayoutEvent):
    TOPIC: ClassVar[str] = "seatledger.layout.TablesUnlinked"

    edges: tuple[Edge, ...]

    def apply(self, aggregate: FloorLayout) -> None:
        aggregate.edges.difference_update(self.edges)


class PolicyChanged(LayoutEvent):
    TOPIC: ClassVar[str] = "seatledger.layout.PolicyChanged"

    policy: VenuePolicy
    previous_version: str

    def apply(self, aggregate: FloorLayout) -> None:
        aggregate.policy = self.policy


# --- aggregate ------------------------------------------------------------------------------


class FloorLayout(Aggregate):
    """One per restaurant; every layout or policy change is an event."""

    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = (
        RestaurantCreated,
        ZoneDefined,
        TableDefined,
        TablesLinked,
        TablesUnlinked,
        PolicyChanged,
    )

    def __init__(
        self, aggregate_id: UUID, restaurant_id: str, name: str, policy: VenuePolicy
    ) -> None:
        super().__init__(aggregate_id)
        self.restaurant_id = restaurant_id
        self.name = name
        self.policy = policy
        self.zones: dict[str, Zone] = {}
        self.tables: dict[str, Table] = {}
        self.edges: set[Edge] = set()
        self.created_by = ""

    @classmethod
    def create(
        cls,
        *,
        restaurant_id: str,
        name: str,
        policy: VenuePolicy,
        stamp: Stamp,
    ) -> FloorLayout:
        return cls._start(
            RestaurantCreated(
                originator_id=layout_id(restaurant_id),
                originator_version=1,
                timestamp=stamp.now,
                command_id=stamp.command_id,
                actor_id=stamp.actor_id,
                restaurant_id=restaurant_id,
                name=name,
                policy=policy,
            )
        )

    def view(self) -> FloorView:
        return FloorView.build(
            restaurant_id=self.restaurant_id,
            name=self.name,
            policy=self.policy,
            zones=self.zones,
            tables=self.tables,
            edges=self.edges,
            version=self.version,
        )

    # commands: each is a no-op (no event) when it would change nothing

    def define_zone(
        self,
        zone: Zone,
        *,
        stamp: Stamp,
    ) -> bool:
        if self.zones.get(zone.zone_id) == zone:
            return False
        self._trigger(ZoneDefined, stamp, zone=zone)
        return True

    def define_table(
        self,
        table: Table,
        *,
        stamp: Stamp,
    ) -> bool:
        if table.zone_id not in self.zones:
            raise NotFoundError(
                ErrorCode.ZONE_NOT_FOUND,
                f"zone {table.zone_id!r} is not defined in restaurant {self.restaurant_id}",
                details={"restaurant_id": self.restaurant_id, "zone_id": table.zone_id},
            )
        previous = self.tables.get(table.table_id)
        if previous == table:
            return False
        if previous is not None and previous.zone_id != table.zone_id:
            # adjacency only joins tables of one zone: a moved table leaves its old edges
            stale = tuple(sorted(e for e in self.edges if table.table_id in e))
            if stale:
                self._trigger(TablesUnlinked, stamp, edges=stale)
        self._trigger(TableDefined, stamp, table=table)
        return True

    def link_tables(
        self,
        pairs: Iterable[Edge],
        *,
        stamp: Stamp,
    ) -> bool:
        new_edges = self._checked_edges(pairs) - self.edges
        if not new_edges:
            return False
        self._trigger(
            TablesLinked,
            stamp,
            edges=tuple(sorted(new_edges)),
        )
        return True

    def unlink_tables(
        self,
        pairs: Iterable[Edge],
        *,
        stamp: Stamp,
    ) -> bool:
        gone = self._checked_edges(pairs) & self.edges
        if not gone:
            return False
        self._trigger(TablesUnlinked, stamp, edges=tuple(sorted(gone)))
        return True

    def change_policy(
        self,
        policy: VenuePolicy,
        *,
        stamp: Stamp,
    ) -> bool:
        if policy.version == self.policy.version:
            return False
        self._trigger(
            PolicyChanged,
            stamp,
            policy=policy,
            previous_version=self.policy.version,
        )
        return True

    def _checked_edges(self, pairs: Iterable[Edge]) -> set[Edge]:
        edges = {edge(a, b) for a, b in pairs}
        loops = [a for a, b in edges if a == b]
        if loops:
            raise InvalidInputError(
                "a table cannot be adjacent to itself",
                details={
                    "errors": [{"field": "edges", "error": f"self-loop on {t}"} for t in loops]
                },
            )
        unknown = sorted({t for e in edges for t in e if t not in self.tables})
        if unknown:
            raise NotFoundError(
                ErrorCode.TABLE_NOT_FOUND,
                f"unknown table(s) {', '.join(unknown)} in restaurant {self.restaurant_id}",
                details={"restaurant_id": self.restaurant_id, "tables": unknown},
            )
        cross = [
            list(e) for e in sorted(edges) if self.tables[e[0]].zone_id != self.tables[e[1]].zone_id
        ]
        if cross:
            raise AllocationError(
                ErrorCode.ZONE_MISMATCH,
                "adjacency only joins tables of the same zone",
                details={"edges": cross},
            )
        return edges
