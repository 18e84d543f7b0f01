"""The planner: properties over random floors (hypothesis), brute-force references, the ranking
and ladder rules, and the search budget on the floors that used to explode."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatledger.domain.combinations import Goal, LowestIds, any_sets, connected_sets
from seatledger.domain.layout import FloorView, Table, Zone, edge
from seatledger.domain.planner import (
    DEFAULT_SEARCH_BUDGET,
    MAX_CANDIDATES_LISTED,
    MAX_REJECTED_LISTED,
    Blocker,
    Candidate,
    Plan,
    Relaxation,
    plan_tables,
)
from seatledger.domain.policy import VenuePolicy


def build_floor(
    tables: list[Table],
    edges: list[tuple[str, str]],
    policy: VenuePolicy | None = None,
    zones: list[Zone] | None = None,
) -> FloorView:
    zone_list = zones or [Zone(zone_id=z) for z in sorted({t.zone_id for t in tables})]
    return FloorView.build(
        restaurant_id="r",
        name="",
        policy=policy or VenuePolicy(),
        zones={z.zone_id: z for z in zone_list},
        tables={t.table_id: t for t in tables},
        edges=[edge(a, b) for a, b in edges],
        version=1,
    )


@st.composite
def floors(draw: st.DrawFn) -> tuple[FloorView, dict[str, Blocker], int]:
    zone_ids = [f"z{i}" for i in range(draw(st.integers(1, 3)))]
    count = draw(st.integers(1, 12))
    tables = []
    for i in range(count):
        min_party = draw(st.none() | st.integers(1, 4))
        max_party = draw(st.none() | st.integers(min_party or 1, 10))
        tables.append(
            Table(
                table_id=f"t{i:02d}",
                zone_id=draw(st.sampled_from(zone_ids)),
                capacity=draw(st.integers(1, 8)),
                movable=draw(st.booleans()),
                active=draw(st.booleans() | st.just(True)),
                min_party_size=min_party,
                max_party_size=max_party,
            )
        )
    same_zone = [
        (a.table_id, b.table_id)
        for a, b in itertools.combinations(tables, 2)
        if a.zone_id == b.zone_id
    ]
    edges = draw(st.lists(st.sampled_from(same_zone), unique=True)) if same_zone else []
    policy = VenuePolicy(
        slack_budget=draw(st.integers(0, 6)),
        max_combination_size=draw(st.integers(1, 4)),
        adjacency_required=draw(st.booleans()),
        adjacency_min_party_size=draw(st.integers(1, 6)),
        adjacency_relaxable=draw(st.booleans()),
    )
    blocked = draw(st.lists(st.sampled_from([t.table_id for t in tables]), unique=True))
    blockers = {
        t: Blocker(draw(st.sampled_from(["assignment", "hold"])), f"x-{t}", f"b-{t}")
        for t in blocked
    }
    party = draw(st.integers(1, 14))
    return build_floor(tables, edges, policy), blockers, party


@st.composite
def crowded_floors(draw: st.DrawFn) -> tuple[FloorView, dict[str, Blocker], int]:
    """Many look-alike movable tables, so the shortlist fills and the rank bounds prune."""
    palette = draw(st.sampled_from([(1,), (2,), (2, 4), (2, 5), (3, 6), (1, 2, 4), (2, 3, 8)]))
    count = draw(st.integers(8, 18))
    capacities = [draw(st.sampled_from(palette)) for _ in range(count)]
    if draw(st.booleans()):
        capacities.sort()  # the better combinations come late in id order
    tables = [
        Table(
            table_id=f"t{i:02d}",
            zone_id=draw(st.sampled_from(["a", "b"])) if i % 3 == 0 else "a",
            capacity=capacity,
            movable=draw(st.sampled_from([True, True, True, False])),
        )
        for i, capacity in enumerate(capacities)
    ]
    same_zone = [
        (a.table_id, b.table_id)
        for a, b in itertools.combinations(tables, 2)
        if a.zone_id == b.zone_id
    ]
    edges = draw(st.lists(st.sampled_from(same_zone), unique=True, max_size=40))
    policy = VenuePolicy(
        slack_budget=draw(st.integers(0, 4)),
        max_combination_size=draw(st.integers(2, 4)),
        adjacency_relaxable=draw(st.booleans()),
    )
    held = draw(st.lists(st.sampled_from([t.table_id for t in tables]), unique=True, max_size=3))
    blockers = {t: Blocker("hold", f"h-{t}", f"b-{t}") for t in held}
    zones = [Zone(zone_id="a"), Zone(zone_id="b", preference=draw(st.integers(-1, 1)))]
    return build_floor(tables, edges, policy, zones), blockers, draw(st.integers(2, 12))


def check_candidate(
    floor: FloorView, candidate: Candidate, party: int, blockers: dict[str, Blocker]
) -> None:
    chosen = [floor.tables[t] for t in candidate.tables]
    assert candidate.tables == tuple(sorted(candidate.tables))
    assert len(set(candidate.tables)) == len(candidate.tables)
    assert sum(t.capacity for t in chosen) == candidate.capacity >= party
    assert 0 <= candidate.capacity - party == candidate.slack <= floor.policy.slack_budget
    assert len(chosen) <= floor.policy.max_combination_size
    assert all(t.active for t in chosen)
    assert not any(t.table_id in blockers for t in chosen)
    assert {t.zone_id for t in chosen} == {candidate.zone_id}
    if len(chosen) > 1:
        assert all(t.movable for t in chosen)
        if candidate.adjacency_required:
            assert floor.is_connected(candidate.tables)
    else:
        assert chosen[0].max_party_size is None or party <= chosen[0].max_party_size


@settings(max_examples=300, deadline=None)
@given(floors())
def test_every_plan_seats_the_party_on_free_active_tables(
    case: tuple[FloorView, dict[str, Blocker], int],
) -> None:
    floor, blockers, party = case
    plan = plan_tables(floor, party_size=party, blockers=blockers)
    for candidate in plan.candidates:
        check_candidate(floor, candidate, party, blockers)
        required = floor.policy.requires_adjacency(party)
        if "adjacency" in candidate.relaxations:
            assert floor.policy.adjacency_relaxable and required
            assert not candidate.adjacency_required
            assert not floor.is_connected(candidate.tables)
        elif len(candidate.tables) > 1:
            assert candidate.adjacency_required == required
        if len(candidate.tables) == 1:
            table = floor.tables[candidate.tables[0]]
            too_small = table.min_party_size is not None and party < table.min_party_size
            assert too_small == ("min_party_size" in candidate.relaxations)
    assert list(plan.candidates) == sorted(plan.candidates)
    assert (plan.best is None) == (plan.reason is not None)
    assert plan.relaxations == (plan.best.relaxations if plan.best else ())


@settings(max_examples=200, deadline=None)
@given(floors(), st.randoms(use_true_random=False))
def test_same_input_same_plan(
    case: tuple[FloorView, dict[str, Blocker], int], rng: random.Random
) -> None:
    floor, blockers, party = case
    first = plan_tables(floor, party_size=party, blockers=blockers)
    tables = list(floor.tables.values())
    edges = list(floor.edges)
    rng.shuffle(tables)
    rng.shuffle(edges)
    shuffled = build_floor(tables, edges, floor.policy, list(floor.zones.values()))
    blocker_items = list(blockers.items())
    rng.shuffle(blocker_items)
    again = plan_tables(shuffled, party_size=party, blockers=dict(blocker_items))
    assert again == first


def fits_alone(table: Table, party: int, slack_budget: int, enforce_min: bool = True) -> bool:
    """The planner's rule for a single-table candidate."""
    if not party <= table.capacity <= party + slack_budget:
        return False
    if table.max_party_size is not None and party > table.max_party_size:
        return False
    return not (enforce_min and table.min_party_size is not None and party < table.min_party_size)


def minimal_sets(
    floor: FloorView, tables: list[Table], goal: Goal, *, adjacency: bool
) -> set[tuple[str, ...]]:
    """Brute force: every set of 2..k tables that seats the party within ``max_capacity``
    (connected if ``adjacency``) and from which no table can be left out leaving a candidate."""

    def candidate(combo: tuple[str, ...]) -> bool:
        seats = sum(floor.tables[t].capacity for t in combo)
        if not goal.party_size <= seats <= goal.max_capacity:
            return False
        if len(combo) == 1:
            return combo[0] in goal.settled
        return not adjacency or floor.is_connected(combo)

    ids = sorted(t.table_id for t in tables)
    return {
        combo
        for size in range(2, goal.k + 1)
        for combo in itertools.combinations(ids, size)
        if candidate(combo)
        and not any(candidate(tuple(t for t in combo if t != out)) for out in combo)
    }


@settings(max_examples=200, deadline=None)
@given(floors(), st.integers(1, 14), st.integers(0, 6))
def test_the_searches_find_exactly_the_minimal_combinations(
    case: tuple[FloorView, dict[str, Blocker], int], party: int, slack: int
) -> None:
    """Against brute force over all k-subsets: the same minimal sets, each once, whether
    grown through the edges or taken in id order."""
    floor, _, _ = case
    k = floor.policy.max_combination_size
    for zone_id in floor.zones:
        tables = [t for t in floor.tables.values() if t.zone_id == zone_id]
        settled = frozenset(t.table_id for t in tables if fits_alone(t, party, slack))
        goal = Goal(party_size=party, max_capacity=party + slack, k=k, settled=settled)
        for adjacency in (True, False):
            search = connected_sets(floor, tables, goal) if adjacency else any_sets(tables, goal)
            found = [tuple(sorted(t.table_id for t in s)) for s in search]
            assert len(found) == len(set(found))
            assert set(found) == minimal_sets(floor, tables, goal, adjacency=adjacency)


def best_few(
    floor: FloorView, tables: list[Table], goal: Goal, *, adjacency: bool, size: int
) -> list[tuple[int, int, tuple[str, ...]]]:
    """Run a search with a shortlist of ``size`` (as the planner does) and return it."""
    kept: list[tuple[int, int, tuple[str, ...]]] = []

    def promising(slack: int, count: int, lowest_ids: LowestIds) -> bool:
        return len(kept) < size or (slack, count, lowest_ids()) < kept[-1]

    search = (
        connected_sets(floor, tables, goal, promising=promising)
        if adjacency
        else any_sets(tables, goal, promising=promising)
    )
    for chosen in search:
        seats = sum(t.capacity for t in chosen)
        ids = tuple(sorted(t.table_id for t in chosen))
        kept.append((seats - goal.party_size, len(chosen), ids))
        kept.sort()
        del kept[size:]
    return kept


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(floors(), crowded_floors()),
    st.integers(2, 12),
    st.integers(0, 4),
    st.integers(1, 3),
)
def test_the_rank_bounds_never_prune_one_of_the_best(
    case: tuple[FloorView, dict[str, Blocker], int], party: int, slack: int, size: int
) -> None:
    """With a shortlist of one to three the bounds prune hard: it still ends up holding the
    best sets brute force finds."""
    floor, _, _ = case
    k = floor.policy.max_combination_size
    for zone_id in floor.zones:
        tables = [t for t in floor.tables.values() if t.zone_id == zone_id and t.movable]
        goal = Goal(party_size=party, max_capacity=party + slack, k=k)
        for adjacency in (True, False):
            every = minimal_sets(floor, tables, goal, adjacency=adjacency)
            ranked = sorted(
                (sum(floor.tables[t].capacity for t in s) - party, len(s), s) for s in every
            )
            found = best_few(floor, tables, goal, adjacency=adjacency, size=size)
            assert found == ranked[:size]


def test_the_edge_search_bounds_ids_by_tables_that_can_still_join() -> None:
    """From T0 the search visits T3's branch first and keeps (T0, T3, T4, T5); the better
    (T0, T2, T5, T6) lies in T5's branch, where T2 can only join through T6 later."""
    tables = [Table(table_id=f"T{i}", zone_id="main", capacity=1, movable=True) for i in range(7)]
    edges = [("T0", "T3"), ("T3", "T4"), ("T0", "T5"), ("T5", "T6"), ("T6", "T2")]
    floor = build_floor(tables, edges)
    goal = Goal(party_size=4, max_capacity=4, k=4)
    assert best_few(floor, tables, goal, adjacency=True, size=1) == [
        (0, 4, ("T0", "T2", "T5", "T6"))
    ]


def reference_candidates(
    floor: FloorView, party: int, blockers: dict[str, Blocker]
) -> list[Candidate]:
    """Brute force over every k-subset of the free active tables, rung by rung of the ladder:
    the minimal candidates that no hold blocks, ranked, the first ``MAX_CANDIDATES_LISTED``."""
    policy = floor.policy
    required = policy.requires_adjacency(party)
    rungs = [(required, True)]
    if required and policy.adjacency_relaxable:
        rungs.append((False, True))
    rungs.append((rungs[-1][0], False))
    free = sorted(
        t.table_id
        for t in floor.tables.values()
        if t.active and not (t.table_id in blockers and blockers[t.table_id].kind == "assignment")
    )

    def candidate(combo: tuple[str, ...], adjacency: bool, enforce_min: bool) -> bool:
        chosen = [floor.tables[t] for t in combo]
        if len(chosen) == 1:
            return fits_alone(chosen[0], party, policy.slack_budget, enforce_min)
        seats = sum(t.capacity for t in chosen)
        return (
            party <= seats <= party + policy.slack_budget
            and all(t.movable for t in chosen)
            and len({t.zone_id for t in chosen}) == 1
            and (not adjacency or floor.is_connected(combo))
        )

    for rung in rungs:
        found = []
        for size in range(1, policy.max_combination_size + 1):
            for combo in itertools.combinations(free, size):
                if not candidate(combo, *rung) or any(t in blockers for t in combo):
                    continue
                if size > 1 and any(
                    candidate(tuple(t for t in combo if t != out), *rung) for out in combo
                ):
                    continue
                chosen = [floor.tables[t] for t in combo]
                connected = not required or size == 1 or floor.is_connected(combo)
                relaxations: tuple[Relaxation, ...] = ()
                if size == 1 and not fits_alone(chosen[0], party, policy.slack_budget):
                    relaxations = ("min_party_size",)
                elif not connected:
                    relaxations = ("adjacency",)
                zone_id = chosen[0].zone_id
                found.append(
                    Candidate(
                        slack=sum(t.capacity for t in chosen) - party,
                        table_count=size,
                        zone_preference=floor.zones[zone_id].preference,
                        zone_id=zone_id,
                        tables=combo,
                        capacity=sum(t.capacity for t in chosen),
                        adjacency_required=required and connected,
                        relaxations=relaxations,
                    )
                )
        if found:
            return sorted(found)[:MAX_CANDIDATES_LISTED]
    return []


@settings(max_examples=300, deadline=None)
@given(floors())
def test_the_plan_lists_the_best_candidates_brute_force_finds(
    case: tuple[FloorView, dict[str, Blocker], int],
) -> None:
    floor, blockers, party = case
    plan = plan_tables(floor, party_size=party, blockers=blockers)
    assert not plan.stopped_early and plan.work <= DEFAULT_SEARCH_BUDGET
    assert list(plan.candidates) == reference_candidates(floor, party, blockers)


@settings(max_examples=150, deadline=None)
@given(crowded_floors())
def test_pruning_by_rank_loses_none_of_the_best(
    case: tuple[FloorView, dict[str, Blocker], int],
) -> None:
    floor, blockers, party = case
    plan = plan_tables(floor, party_size=party, blockers=blockers)
    assert not plan.stopped_early
    assert list(plan.candidates) == reference_candidates(floor, party, blockers)


@pytest.mark.parametrize(
    ("capacities", "party", "best"),
    [
        # 3-tops only reach 9, 12, ...: one 3-top and the late 6-top seat 8 on two tables
        ([3] * 12 + [6], 8, ("a00", "a12")),
        # 2-tops overshoot 5 by one; the late 1-top makes it exact
        ([2] * 12 + [1], 5, ("a00", "a01", "a12")),
    ],
)
def test_the_best_combination_is_found_when_it_comes_last_in_id_order(
    capacities: list[int], party: int, best: tuple[str, ...]
) -> None:
    """The shortlist fills with worse sets first; the bounds must not prune the better one."""
    tables = [
        Table(table_id=f"a{i:02d}", zone_id="main", capacity=c, movable=True)
        for i, c in enumerate(capacities)
    ]
    floor = build_floor(tables, [], VenuePolicy(adjacency_required=False))
    plan = plan_tables(floor, party_size=party, blockers={})
    assert plan.best is not None and plan.best.tables == best
    assert list(plan.candidates) == reference_candidates(floor, party, {})


@settings(max_examples=200, deadline=None)
@given(floors(), st.integers(1, 60))
def test_a_small_budget_bounds_the_work_and_still_plans_validly(
    case: tuple[FloorView, dict[str, Blocker], int], budget: int
) -> None:
    floor, blockers, party = case
    plan = plan_tables(floor, party_size=party, blockers=blockers, budget=budget)
    assert plan.work <= budget
    for candidate in plan.candidates:
        check_candidate(floor, candidate, party, blockers)
    assert list(plan.candidates) == sorted(plan.candidates)
    assert (plan.best is None) == (plan.reason is not None)
    if plan.stopped_early:
        assert plan.work == budget
        assert plan.reason in (None, "HOLD_CONFLICTS", "SEARCH_BUDGET_EXHAUSTED")
    else:
        # the search finished: the same plan an unbounded search makes
        assert plan == plan_tables(floor, party_size=party, blockers=blockers)


@settings(max_examples=200, deadline=None)
@given(floors())
def test_no_candidate_reasons(case: tuple[FloorView, dict[str, Blocker], int]) -> None:
    floor, blockers, party = case
    plan = plan_tables(floor, party_size=party, blockers=blockers)
    if plan.reason is None:
        return
    empty_floor = plan_tables(floor, party_size=party, blockers={})
    if plan.reason == "NO_CAPACITY":
        assert empty_floor.best is None  # nothing fits even on an empty floor
    else:
        assert empty_floor.best is not None  # something fits, but it is taken
        held_back = any(r.reason == "HOLD_CONFLICT" for r in plan.rejected)
        # HOLD_CONFLICTS: holds alone stand in the way of some candidate
        assert (plan.reason == "HOLD_CONFLICTS") == held_back
        if held_back:
            assert any(b.kind == "hold" for b in blockers.values())
        busy = {t for t, b in blockers.items() if b.kind == "assignment"}
        reported = {r.tables[0] for r in plan.rejected if r.reason == "ASSIGNMENT_CONFLICT"}
        if plan.rejected_total <= MAX_REJECTED_LISTED:
            assert reported == busy  # every taken table is named with its reason


def row(count: int, capacity: int = 2, zone: str = "main") -> list[Table]:
    return [
        Table(table_id=f"{zone[0].upper()}{i}", zone_id=zone, capacity=capacity, movable=True)
        for i in range(1, count + 1)
    ]


def chain(tables: list[Table]) -> list[tuple[str, str]]:
    return [(a.table_id, b.table_id) for a, b in itertools.pairwise(tables)]


def test_ranking_least_slack_then_fewest_tables_then_zone_preference() -> None:
    main = [*row(3), Table(table_id="M9", zone_id="main", capacity=4)]
    patio = [Table(table_id="P1", zone_id="patio", capacity=4)]
    floor = build_floor(
        main + patio,
        chain(main[:3]),
        zones=[Zone(zone_id="main", preference=1), Zone(zone_id="patio", preference=0)],
    )
    plan = plan_tables(floor, party_size=4, blockers={})
    assert [c.tables for c in plan.candidates[:4]] == [
        ("P1",),  # slack 0, one table, preferred zone
        ("M9",),  # slack 0, one table
        ("M1", "M2"),  # slack 0, two tables (ids break the tie)
        ("M2", "M3"),
    ]


def test_ladder_relaxes_adjacency_then_min_party_size() -> None:
    apart = row(4)
    floor = build_floor(apart, [("M1", "M2")])
    assert plan_tables(floor, party_size=4, blockers={}).relaxations == ()
    busy = {"M2": Blocker("assignment", "b9", "b9")}
    relaxed = plan_tables(floor, party_size=4, blockers=busy)
    assert relaxed.relaxations == ("adjacency",)
    assert relaxed.best is not None and not relaxed.best.adjacency_required
    assert relaxed.best.tables == ("M1", "M3")

    strict = build_floor(apart, [("M1", "M2")], VenuePolicy(adjacency_relaxable=False))
    assert plan_tables(strict, party_size=4, blockers=busy).reason == "NO_TABLES_AVAILABLE"

    big = [Table(table_id="X1", zone_id="main", capacity=4, min_party_size=3)]
    floor = build_floor(big, [])
    plan = plan_tables(floor, party_size=2, blockers={})
    assert plan.relaxations == ("min_party_size",)
    assert plan.best is not None and plan.best.tables == ("X1",)


def test_no_candidate_reasons_are_specific() -> None:
    floor = build_floor(row(2), chain(row(2)))
    assert plan_tables(floor, party_size=9, blockers={}).reason == "NO_CAPACITY"
    held = {t: Blocker("hold", f"h-{t}", "b2") for t in ("M1", "M2")}
    plan: Plan = plan_tables(floor, party_size=2, blockers=held)
    assert plan.reason == "HOLD_CONFLICTS"
    assert {r.reason for r in plan.rejected} == {"HOLD_CONFLICT"}
    assert plan.rejected[0].detail["blocked_by"] == ["hold:h-M1"]
    # M2 would do but for a hold: retrying after it lapses may work
    mixed = {"M1": Blocker("assignment", "b3", "b3"), "M2": held["M2"]}
    plan = plan_tables(floor, party_size=2, blockers=mixed)
    assert plan.reason == "HOLD_CONFLICTS"
    assert [(r.tables, r.reason) for r in plan.rejected][:2] == [
        (("M1",), "ASSIGNMENT_CONFLICT"),
        (("M2",), "HOLD_CONFLICT"),
    ]
    taken = {t: Blocker("assignment", f"b-{t}", f"b-{t}") for t in ("M1", "M2")}
    assert plan_tables(floor, party_size=2, blockers=taken).reason == "NO_TABLES_AVAILABLE"


def look_alikes(count: int, capacity: int) -> list[Table]:
    return [
        Table(table_id=f"t{i:03d}", zone_id="main", capacity=capacity, movable=True)
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "capacity", "k", "expected"),
    [
        # every 3-subset of 200 tables used to be a candidate: 1.3 million of them
        (200, 2, 3, [("t000", "t001", f"t{i:03d}") for i in range(2, 12)]),
        # every subset of up to 8 of 28 tables: 4.7 million
        (28, 1, 8, [("t000", "t001", "t002", "t003", "t004", f"t{i:03d}") for i in range(5, 15)]),
    ],
)
def test_the_floors_that_exploded_are_planned_exactly_on_little_work(
    count: int, capacity: int, k: int, expected: list[tuple[str, ...]]
) -> None:
    """Movable look-alike tables and no edges: the adjacency rung finds nothing, the relaxed
    rung could combine anything. The bounds finish the search in a few hundred sets."""
    floor = build_floor(look_alikes(count, capacity), [], VenuePolicy(max_combination_size=k))
    plan = plan_tables(floor, party_size=6, blockers={})
    assert not plan.stopped_early
    assert plan.work < 1_000
    assert [c.tables for c in plan.candidates] == expected
    assert plan.relaxations == ("adjacency",)
    for candidate in plan.candidates:
        check_candidate(floor, candidate, 6, {})


def test_a_search_beyond_the_budget_stops_early_with_a_valid_plan() -> None:
    """197 of 200 tables held by other quotes: only one free set remains, found early, and no
    bound can prune the held sets, so the search spends the whole budget."""
    floor = build_floor(look_alikes(200, 2), [])
    free = {"t000", "t001", "t199"}
    held = {t: Blocker("hold", f"h-{t}", f"b-{t}") for t in floor.tables if t not in free}
    plan = plan_tables(floor, party_size=6, blockers=held)
    assert plan.stopped_early
    assert plan.work == DEFAULT_SEARCH_BUDGET
    assert plan.best is not None and plan.best.tables == ("t000", "t001", "t199")
    check_candidate(floor, plan.best, 6, held)
    assert plan.reason is None
    assert plan.rejected_total > MAX_REJECTED_LISTED == len(plan.rejected)


def test_a_budget_spent_before_any_candidate_is_a_reason() -> None:
    floor = build_floor(look_alikes(200, 2), [])
    plan = plan_tables(floor, party_size=6, blockers={}, budget=50)
    assert (plan.reason, plan.stopped_early, plan.work) == ("SEARCH_BUDGET_EXHAUSTED", True, 50)
    assert plan.candidates == ()
