"""The automated choice of tables: ranked candidates for one booking, found within a budget.

Candidates are single tables that fit the party, then combinations of up to k movable tables
of one zone (``seatledger.domain.combinations``: grown through the adjacency graph, or in id
order when adjacency is relaxed). Ranking: least slack, fewest tables, zone preference, then the
sorted table ids, so the same state always yields the same plan. Only the best
``MAX_CANDIDATES_LISTED`` are kept, and only minimal combinations (none of whose tables could be
left out), so the search can prune whatever would rank below the shortlist.

The work is bounded: each table set examined costs one unit of the search budget
(``DEFAULT_SEARCH_BUDGET`` unless the caller passes one), shared by every rung of the ladder. A
search that runs out returns the best it found with ``stopped_early`` set.

When nothing is free, the relaxation ladder drops the adjacency requirement (if the policy
allows) and then the tables' minimum party sizes; the plan records which it used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from seatledger.domain.combinations import (
    Budget,
    Goal,
    LowestIds,
    Promising,
    always,
    any_sets,
    connected_sets,
)
from seatledger.domain.layout import FloorView, Table

NoCandidateReason = Literal[
    "NO_CAPACITY", "NO_TABLES_AVAILABLE", "HOLD_CONFLICTS", "SEARCH_BUDGET_EXHAUSTED"
]
Relaxation = Literal["adjacency", "min_party_size"]

#: The rejected list is capped; ``rejected_total`` counts every rejection the search met.
MAX_REJECTED_LISTED = 50
#: The best candidates a plan lists (the quote result shows them all).
MAX_CANDIDATES_LISTED = 10
#: Table sets one plan may examine (see ``combinations.Budget``): 0.1-0.2 s of work on the
#: benchmark's floors. A plan on the 100-table bench floor needs at most a few hundred; a plan that
#: reaches the budget stops early (docs/benchmarks.md, planner-worst-case).
DEFAULT_SEARCH_BUDGET = 10_000

RankKey = tuple[int, int, int, str, tuple[str, ...]]


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

    @property
    def rank(self) -> RankKey:
        return (self.slack, self.table_count, self.zone_preference, self.zone_id, self.tables)


@dataclass(frozen=True)
class Rejected:
    tables: tuple[str, ...]
    #: ASSIGNMENT_CONFLICT, HOLD_CONFLICT, TABLE_INACTIVE, PARTY_SIZE_RANGE or SLACK_BUDGET_EXCEEDED
    reason: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    party_size: int
    #: The best candidates, ranked (at most ``MAX_CANDIDATES_LISTED``).
    candidates: tuple[Candidate, ...]
    #: The rejections the search met, in (reason, tables) order, capped.
    rejected: tuple[Rejected, ...]
    rejected_total: int
    relaxations: tuple[Relaxation, ...]
    reason: NoCandidateReason | None
    #: True when the search budget ran out: the candidates are the best found, not
    #: necessarily the best there are.
    stopped_early: bool = False
    #: Units of the search budget spent (table sets examined).
    work: int = 0

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class _Stage:
    """One rung of the ladder: must combinations be connected, must tables' minimum party
    sizes be respected."""

    adjacency: bool
    min_party: bool


class _Shortlist:
    """The best viable candidates so far; once full, its last one bounds the search."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.kept: list[Candidate] = []

    def offer(self, candidate: Candidate) -> None:
        if len(self.kept) < self.size or candidate.rank < self.kept[-1].rank:
            self.kept.append(candidate)
            self.kept.sort()
            del self.kept[self.size :]

    def bound(self, preference: int, zone_id: str) -> Promising:
        """Whether a set of this zone with these lower bounds could still be kept."""

        def promising(slack: int, table_count: int, lowest_ids: LowestIds) -> bool:
            if len(self.kept) < self.size:
                return True
            worst = self.kept[-1].rank
            head = (slack, table_count, preference, zone_id)
            if head != worst[:4]:
                return head < worst[:4]
            return lowest_ids() < worst[4]

        return promising


class _Rejections:
    """The first ``MAX_REJECTED_LISTED`` rejections in (reason, tables) order, and the count."""

    def __init__(self, initial: Iterable[Rejected] = ()) -> None:
        self.kept: list[Rejected] = []
        self.total = 0
        for rejected in initial:
            self.add(rejected)

    def add(self, rejected: Rejected) -> None:
        self.total += 1
        self.kept.append(rejected)
        if len(self.kept) > 2 * MAX_REJECTED_LISTED:
            self._trim()

    def _trim(self) -> None:
        self.kept.sort(key=lambda r: (r.reason, r.tables))
        del self.kept[MAX_REJECTED_LISTED:]

    def listed(self) -> tuple[Rejected, ...]:
        self._trim()
        return tuple(self.kept)


def plan_tables(
    floor: FloorView,
    *,
    party_size: int,
    blockers: Mapping[str, Blocker],
    max_tables: int | None = None,
    budget: int | None = None,
) -> Plan:
    """Rank the candidates for a party, given which tables are blocked in its window.

    Tables another booking is assigned to are left out of the enumeration (each is reported
    once as an ``ASSIGNMENT_CONFLICT`` rejection), so a full floor stays cheap; candidates
    that only a live hold blocks are enumerated and reported as ``HOLD_CONFLICT``.
    No candidate: ``HOLD_CONFLICTS`` if holds alone stand in the way of some candidate,
    ``SEARCH_BUDGET_EXHAUSTED`` if the budget ran out first, ``NO_TABLES_AVAILABLE`` if
    something would fit an empty floor, else ``NO_CAPACITY``.
    """
    policy = floor.policy
    k = max_tables if max_tables is not None else policy.max_combination_size
    work = Budget(limit=DEFAULT_SEARCH_BUDGET if budget is None else budget)
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
    rejected = _Rejections()
    held_back = False
    for stage in stages:
        shortlist = _Shortlist(MAX_CANDIDATES_LISTED)
        rejected = _Rejections(busy_rejections)
        for candidate in _structural(
            floor, party_size, k, stage, rejected, exclude=busy, budget=work, shortlist=shortlist
        ):
            holding = sorted({f"hold:{blockers[t].ref}" for t in candidate.tables if t in blockers})
            if holding:
                held_back = True
                rejected.add(Rejected(candidate.tables, "HOLD_CONFLICT", {"blocked_by": holding}))
            else:
                shortlist.offer(candidate)
        if shortlist.kept:
            return Plan(
                party_size=party_size,
                candidates=tuple(shortlist.kept),
                rejected=rejected.listed(),
                rejected_total=rejected.total,
                relaxations=shortlist.kept[0].relaxations,
                reason=None,
                stopped_early=work.exhausted,
                work=work.spent,
            )
        if work.exhausted:
            break  # the next rungs have nothing left to spend
    reason: NoCandidateReason
    if held_back:
        reason = "HOLD_CONFLICTS"
    elif work.exhausted:
        reason = "SEARCH_BUDGET_EXHAUSTED"
    else:
        empty_floor = _structural(
            floor, party_size, k, stages[-1], _Rejections(), exclude={}, budget=work
        )
        if next(empty_floor, None) is not None:
            reason = "NO_TABLES_AVAILABLE"
        else:
            reason = "SEARCH_BUDGET_EXHAUSTED" if work.exhausted else "NO_CAPACITY"
    return Plan(
        party_size=party_size,
        candidates=(),
        # the last rung's rejections: it considered the most candidates
        rejected=rejected.listed(),
        rejected_total=rejected.total,
        relaxations=(),
        reason=reason,
        stopped_early=work.exhausted,
        work=work.spent,
    )


def _structural(
    floor: FloorView,
    party_size: int,
    k: int,
    stage: _Stage,
    rejected: _Rejections,
    *,
    exclude: Mapping[str, object],
    budget: Budget,
    shortlist: _Shortlist | None = None,
) -> Iterator[Candidate]:
    """The table sets that could seat the party at this stage, leaving out ``exclude``:
    single tables first, then each zone's minimal combinations in rank order of the zones.
    With a shortlist, combinations that could not make it are not looked for."""
    slack_budget = floor.policy.slack_budget
    required = floor.policy.requires_adjacency(party_size)
    by_zone: dict[str, list[Table]] = {}
    for table in sorted(floor.tables.values(), key=lambda t: t.table_id):
        if table.table_id in exclude:
            continue
        if not table.active:
            rejected.add(Rejected((table.table_id,), "TABLE_INACTIVE"))
            continue
        by_zone.setdefault(table.zone_id, []).append(table)

    def preference(zone_id: str) -> int:
        return floor.zones[zone_id].preference if zone_id in floor.zones else 0

    settled: set[str] = set()
    for zone_id in sorted(by_zone):
        for table in by_zone[zone_id]:
            if not budget.take():
                return
            if table.capacity < party_size:
                continue
            if not _party_fits(table, party_size, stage.min_party):
                rejected.add(
                    Rejected(
                        (table.table_id,),
                        "PARTY_SIZE_RANGE",
                        {"min": table.min_party_size, "max": table.max_party_size},
                    )
                )
                continue
            if table.capacity - party_size > slack_budget:
                rejected.add(
                    Rejected(
                        (table.table_id,),
                        "SLACK_BUDGET_EXCEEDED",
                        {"slack": table.capacity - party_size, "budget": slack_budget},
                    )
                )
                continue
            settled.add(table.table_id)
            needs: tuple[Relaxation, ...] = (
                ("min_party_size",) if not _party_fits(table, party_size, True) else ()
            )
            yield _candidate(
                (table,),
                zone_id=zone_id,
                preference=preference(zone_id),
                party_size=party_size,
                adjacency=required,
                relaxations=needs,
            )

    if k < 2:
        return
    goal = Goal(party_size, party_size + slack_budget, k, frozenset(settled))
    for zone_id in sorted(by_zone, key=lambda z: (preference(z), z)):
        promising = always if shortlist is None else shortlist.bound(preference(zone_id), zone_id)
        movable = [t for t in by_zone[zone_id] if t.movable]
        sets = (
            connected_sets(floor, movable, goal, budget=budget, promising=promising)
            if stage.adjacency
            else any_sets(movable, goal, budget=budget, promising=promising)
        )
        for chosen in sets:
            # the edge search's sets are connected by construction
            connected = (
                not required or stage.adjacency or floor.is_connected(t.table_id for t in chosen)
            )
            yield _candidate(
                chosen,
                zone_id=zone_id,
                preference=preference(zone_id),
                party_size=party_size,
                adjacency=connected and required,
                relaxations=() if connected else ("adjacency",),
            )
        if budget.exhausted:
            return


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
