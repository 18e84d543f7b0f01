"""The hosts' picture of the floor: the parties and holds they track and the tables they
think are free. Built only from the results the service returned, so it can be wrong: the
service's rejections when it is are part of the show."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from seatledger.application.commands import CreateRestaurant
from seatledger.application.demo.config import HOSTS, TIMEZONE
from seatledger.domain.layout import Table, edge
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.values import Window


@dataclass
class Party:
    booking_id: str
    party_size: int
    start: datetime
    walk_in: bool = False
    window: Window | None = None
    tables: tuple[str, ...] = ()
    closed: bool = False
    host: str = HOSTS[0]
    attempts: int = 0
    #: Its quote awaiting auto-assign, if it was quoted ahead.
    quote: Hold | None = None
    #: False: the terminal auto-assigning it has drift retry switched off.
    retry_on_drift: bool | None = None
    #: How it first got tables (auto, hold or manual).
    seated_by: str | None = None


@dataclass
class Hold:
    hold_id: str
    booking_id: str
    tables: tuple[str, ...]
    window: Window
    expires_at: datetime
    #: When its confirm is due, if a confirm before expiry is planned.
    confirm_at: datetime | None = None
    #: Confirmed, replaced or released: no step of the hosts touches it any more.
    settled: bool = False


class FloorPicture:
    """Tables, adjacency, policy, who sits where and which holds are open, as the hosts
    know them."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.zone_rank: dict[str, int] = {}
        self.edges: set[tuple[str, str]] = set()
        self.policy = VenuePolicy(timezone=TIMEZONE)
        self.combos: list[tuple[str, ...]] = []
        self.assigned: dict[str, dict[str, Window]] = {}
        self.holds: dict[str, Hold] = {}

    def load_layout(self, command: CreateRestaurant) -> None:
        self.tables = {t.table_id: t for t in command.tables}
        self.zone_rank = {z.zone_id: z.preference for z in command.zones}
        self.edges = {edge(a, b) for a, b in command.adjacency}
        self.policy = command.policy
        self.recompute_combos()

    def recompute_combos(self) -> None:
        """Connected groups of 2-3 movable tables of one zone, as the hosts know the floor."""
        neighbours: dict[str, set[str]] = {t: set() for t in self.tables}
        for a, b in self.edges:
            neighbours[a].add(b)
            neighbours[b].add(a)
        combos: list[tuple[str, ...]] = []
        by_zone: dict[str, list[str]] = {}
        for table in self.tables.values():
            if table.movable and table.active:
                by_zone.setdefault(table.zone_id, []).append(table.table_id)
        for ids in by_zone.values():
            for size in (2, 3):
                for group in itertools.combinations(sorted(ids), size):
                    if _connected(group, neighbours):
                        combos.append(group)
        self.combos = combos

    def edges_among(self, tables: Sequence[str]) -> list[tuple[str, str]]:
        return sorted(e for e in self.edges if e[0] in tables and e[1] in tables)

    def fits(self, tables: Sequence[str], party_size: int) -> bool:
        chosen = [self.tables[t] for t in tables]
        capacity = sum(t.capacity for t in chosen)
        if not 0 <= capacity - party_size <= self.policy.slack_budget:
            return False
        if len(chosen) == 1:
            only = chosen[0]
            return (only.min_party_size or 0) <= party_size <= (only.max_party_size or 99)
        return True

    def busy(self, tables: Sequence[str], party: Party, now: datetime) -> bool:
        assert party.window is not None
        window = party.window
        for table_id in tables:
            for booking_id, other in self.assigned.get(table_id, {}).items():
                if booking_id != party.booking_id and _overlap(window, other):
                    return True
        for hold in self.holds.values():
            if (
                hold.booking_id != party.booking_id
                and now < hold.expires_at
                and set(hold.tables) & set(tables)
                and _overlap(window, hold.window)
            ):
                return True
        return False

    def held_by_other(self, tables: Sequence[str], party: Party, now: datetime) -> bool:
        return any(
            hold.booking_id != party.booking_id
            and now < hold.expires_at
            and set(hold.tables) & set(tables)
            for hold in self.holds.values()
        )

    def candidates(
        self, party: Party, now: datetime, *, free: bool = True
    ) -> list[tuple[str, ...]]:
        """Table sets that fit the party, best first (least slack, fewest tables, zone)."""
        singles = [(t.table_id,) for t in self.tables.values() if t.active]
        fitting = [
            c
            for c in (*singles, *self.combos)
            if self.fits(c, party.party_size) and self.busy(c, party, now) != free
        ]
        return sorted(
            fitting,
            key=lambda c: (
                sum(self.tables[t].capacity for t in c) - party.party_size,
                len(c),
                self.zone_rank[self.tables[c[0]].zone_id],
                c,
            ),
        )

    def set_tables(self, party: Party, tables: Sequence[str]) -> None:
        for table_id in party.tables:
            self.assigned.get(table_id, {}).pop(party.booking_id, None)
        party.tables = tuple(tables)
        assert party.window is not None or not tables
        for table_id in party.tables:
            assert party.window is not None
            self.assigned.setdefault(table_id, {})[party.booking_id] = party.window

    def settle(self, hold: Hold) -> None:
        """Confirmed, replaced or released: the hold blocks nothing in the hosts' picture."""
        hold.settled = True
        self.holds.pop(hold.hold_id, None)

    def drop_holds(self, booking_id: str) -> None:
        for hold in [h for h in self.holds.values() if h.booking_id == booking_id]:
            self.settle(hold)


def _connected(group: Sequence[str], neighbours: dict[str, set[str]]) -> bool:
    chosen = set(group)
    seen = {group[0]}
    frontier = [group[0]]
    while frontier:
        for nxt in neighbours[frontier.pop()] & chosen:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen == chosen


def _overlap(a: Window, b: Window) -> bool:
    return a.start < b.end and b.start < a.end
