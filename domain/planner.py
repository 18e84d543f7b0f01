"""The automated choice of tables: ranked candidates for one booking.

Candidates are single tables that fit the party, then combinations of up to k movable tables
of one zone. Combinations are grown through the adjacency graph (each connected set is
reached exactly once, from its smallest table), so the work follows the floor's edges rather
than all k-subsets; only when adjacency is not required are non-adjacent sets considered, and
then with capacity pruning. Ranking: least slack, fewest tables, zone preference, then the
sorted table ids, so the same state always yields the same plan.

When nothing is free, the relaxation ladder drops the adjacency requirement (if the policy
allows) and then the tables' minimum party sizes; the plan records which it used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from seatledger.domain.layout import FloorView, Table

NoCandidateReason = Literal["NO_CAPACITY", "NO_TABLES_AVAILABLE", "HOLD_CONFLICTS"]
Relaxation = Literal["adjacency", "min_party_size"]

#: The rejected list is capped; ``rejected_total`` keeps the full count.
MAX_REJECTED_LISTED = 50


@dataclass(frozen=True)
class Blocker:
    """Why a table cannot be used in the booking's window."""

    kind: Literal["assignment", "hold"]
    ref: str  # the blocking booking id or hold id
    booking_id: str


@dataclass(frozen=True, order=True)
class Candidate:
    #: rank key first, so sorting candidates ranks them
    slack: int
    table_count: int
    zone_preference: int
    zone_id: str
    tables: tuple[str, ...]
    capacity: int = field(compare=False)
    #: Whether the confirm must find the tables connected (False only for a relaxed plan).
    adjacency_required: bool = field(compare=False)
    #: The ladder steps this candidate needs: adjacency (a combination that is not
    #: connected) and min_party_size (a table meant for larger parties).
    relaxations: tuple[Relaxation, ...] = field(compare=False, default=())


@dataclass(frozen=True)
class Rejected:
    tables: tuple[str, ...]
    #: ASSIGNMENT_CONFLICT, HOLD_CONFLICT, TABLE_INACTIVE, PARTY_SIZE_RANGE or SLACK_BUDGET_EXCEEDED
    reason: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    party_size: int
    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejected, ...]
    rejected_total: int
    relaxations: tuple[Relaxation, ...]
    reason: NoCandidateReason | None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class _Stage:
    """One rung of the ladder: must combinations be connected, must tables' minimum party
    sizes be respected."""

    adjacency: bool
    min_party: bool


def plan_tables(
    floor: FloorView,
    *,
    party_size: int,
    blockers: Mapping[str, Blocker],
    max_tables: int | None = None,
) -> Plan:
    """Rank the candidates for a party, given which tables are blocked in its window.

    Tables another booking is assigned to are left out of the enumeration (each is reported
    once as an ``ASSIGNMENT_CONFLICT`` rejection), so a full floor stays cheap; candidates
    that only a live hold blocks are enumerated and reported as ``HOLD_CONFLICT``.
    No candidate: ``HOLD_CONFLICTS`` if holds alone stand in the way of some candidate,
    ``NO_TABLES_AVAILABLE`` if something would fit an empty floor, else ``NO_CAPACITY``.
    """
    policy = floor.policy
    k = max_tables if max_tables is not None else policy.max_combination_size
    required = policy.requires_adjacency(party_size)
    stages = [_Stage(adjacency=required, min_party=True)]
    if required and policy.adjacency_relaxable:
        stages.append(_Stage(adjacency=False, min_party=True))
    last = stages[-1]
    stages.append(_Stage(adjacency=last.adjacency, min_party=False))

    busy = {t: b for t, b in blockers.items() if b.kind == "assignment" and t in floor.tables}
    busy_rejections = [
        Rejected((table_id,), "ASSIGNMENT_CONFLICT", {"blocked_by": [f"assignment:{b.ref}"]})
        for table_id, b in sorted(busy.items())
    ]
    rejected: list[Rejected] = []
    held_back = False
    for stage in stages:
        viable: list[Candidate] = []
        rejected = list(busy_rejections)
        for candidate in _structural(floor, party_size, k, stage, rejected, exclude=busy):
            holding = sorted({f"hold:{blockers[t].ref}" for t in candidate.tables if t in blockers})
            if holding:
                held_back = True
                rejected.append(
                    Rejected(candidate.tables, "HOLD_CONFLICT", {"blocked_by": holding})
                )
            else:
                viable.append(candidate)
        rejected.sort(key=lambda r: (r.reason, r.tables))
        if viable:
            return Plan(
                party_size=party_size,
                candidates=tuple(sorted(viable)),
                rejected=tuple(rejected[:MAX_REJECTED_LISTED]),
                rejected_total=len(rejected),
                relaxations=min(viable).relaxations,
                reason=None,
            )
    reason: NoCandidateReason
    if held_back:
        reason = "HOLD_CONFLICTS"
    elif next(_structural(floor, party_size, k, stages[-1], [], exclude={}), None) is not None:
        reason = "NO_TABLES_AVAILABLE"
    else:
        reason = "NO_CAPACITY"
    return Plan(
        party_size=party_size,
        candidates=(),
        # the last rung's rejections: it considered the most candidates
        rejected=tuple(rejected[:MAX_REJECTED_LISTED]),
        rejected_total=len(rejected),
        relaxations=(),
        reason=reason,
    )


def _structural(
    floor: FloorView,
    party_size: int,
    k: int,
    stage: _Stage,
    rejected: list[Rejected],
    *,
    exclude: Mapping[str, object],
) -> Iterator[Candidate]:
    """Every table set that could seat the party at this stage, leaving out ``exclude``."""
    budget = floor.policy.slack_budget
    required = floor.policy.requires_adjacency(party_size)
    by_zone: dict[str, list[Table]] = {}
    for table in sorted(floor.tables.values(), key=lambda t: t.table_id):
        if table.table_id in exclude:
            continue
        if not table.active:
            rejected.append(Rejected((table.table_id,), "TABLE_INACTIVE"))
            continue
        by_zone.setdefault(table.zone_id, []).append(table)

    for zone_id in sorted(by_zone):
        preference = floor.zones[zone_id].preference if zone_id in floor.zones else 0
        tables = by_zone[zone_id]
        for table in tables:
            if table.capacity < party_size:
                continue
            if not _party_fits(table, party_size, stage.min_party):
                rejected.append(
                    Rejected(
                        (table.table_id,),
                        "PARTY_SIZE_RANGE",
                        {"min": table.min_party_size, "max": table.max_party_size},
                    )
                )
                continue
            if table.capacity - party_size > budget:
                rejected.append(
                    Rejected(
                        (table.table_id,),
                        "SLACK_BUDGET_EXCEEDED",
                        {"slack": table.capacity - party_size, "budget": budget},
                    )
                )
                continue
            needs: tuple[Relaxation, ...] = (
                ("min_party_size",) if not _party_fits(table, party_size, True) else ()
            )
            yield _candidate(
                (table,),
                zone_id=zone_id,
                preference=preference,
                party_size=party_size,
                adjacency=required,
                relaxations=needs,
            )

        if k < 2:
            continue
        movable = [t for t in tables if t.movable]
        sets = (
            connected_sets(floor, movable, k, party_size + budget)
            if stage.adjacency
            else any_sets(movable, k, party_size + budget)
        )
        for chosen in sets:
            if len(chosen) < 2:
                continue
            capacity = sum(t.capacity for t in chosen)
            if capacity < party_size:
                continue
            connected = not required or floor.is_connected(t.table_id for t in chosen)
            needs = () if connected else ("adjacency",)
            yield _candidate(
                chosen,
                zone_id=zone_id,
                preference=preference,
                party_size=party_size,
                adjacency=connected and required,
                relaxations=needs,
            )


def _candidate(
    chosen: tuple[Table, ...],
    *,
    zone_id: str,
    preference: int,
    party_size: int,
    adjacency: bool,
    relaxations: tuple[Relaxation, ...],
) -> Candidate:
    capacity = sum(t.capacity for t in chosen)
    return Candidate(
        slack=capacity - party_size,
        table_count=len(chosen),
        zone_preference=preference,
        zone_id=zone_id,
        tables=tuple(sorted(t.table_id for t in chosen)),
        capacity=capacity,
        adjacency_required=adjacency,
        relaxations=relaxations,
    )


def _party_fits(table: Table, party_size: int, enforce_min: bool) -> bool:
    if table.max_party_size is not None and party_size > table.max_party_size:
        return False
    return not (
        enforce_min and table.min_party_size is not None and party_size < table.min_party_size
    )


def connected_sets(
    floor: FloorView, tables: Iterable[Table], k: int, max_capacity: int
) -> Iterator[tuple[Table, ...]]:
    """Connected sets of up to ``k`` tables, each exactly once: grown from its smallest id
    through neighbours with larger ids that are not yet adjacent to the set (the ESU scheme
    of Wernicke), pruned once capacity exceeds ``max_capacity`` (tables only add seats)."""
    by_id = {t.table_id: t for t in tables}

    def exclusive(root: str, chosen: tuple[str, ...], newest: str) -> set[str]:
        covered = {*chosen, newest}
        for member in chosen:
            covered |= floor.neighbours(member)
        return {n for n in floor.neighbours(newest) if n in by_id and n > root and n not in covered}

    def extend(
        root: str, chosen: tuple[str, ...], extension: set[str], seats: int
    ) -> Iterator[tuple[Table, ...]]:
        if seats > max_capacity:
            return
        yield tuple(by_id[t] for t in chosen)
        if len(chosen) == k:
            return
        remaining = set(extension)
        for nxt in sorted(extension):
            remaining.discard(nxt)
            yield from extend(
                root,
                (*chosen, nxt),
                remaining | exclusive(root, chosen, nxt),
                seats + by_id[nxt].capacity,
            )

    for root in sorted(by_id):
        yield from extend(root, (root,), exclusive(root, (), root), by_id[root].capacity)


def any_sets(tables: Iterable[Table], k: int, max_capacity: int) -> Iterator[tuple[Table, ...]]:
    """Sets of up to ``k`` tables regardless of adjacency (relaxed plans), in id order,
    pruned by capacity."""
    ordered = sorted(tables, key=lambda t: t.table_id)

    def grow(start: int, chosen: tuple[Table, ...], seats: int) -> Iterator[tuple[Table, ...]]:
        if chosen:
            yield chosen
        if len(chosen) == k:
            return
        for index in range(start, len(ordered)):
            table = ordered[index]
            if seats + table.capacity <= max_capacity:
                yield from grow(index + 1, (*chosen, table), seats + table.capacity)

    yield from grow(0, (), 0)
