"""Drift: has the floor changed, for the held tables, since the hold took its snapshot?

Only genuine snapshot mismatches become :class:`PolicyDriftError`; nothing else is ever
converted into one (the source system turned unrelated failures into drift and back).
"""

from __future__ import annotations

from typing import Any

from seatledger.domain.errors import DRIFT_KINDS, DriftKind, PolicyDriftError
from seatledger.domain.layout import AdjacencySnapshot, FloorView, TableFacts


def detect_drift(
    *,
    hold_id: str,
    tables: tuple[str, ...],
    policy_version: str,
    adjacency: AdjacencySnapshot,
    table_facts: dict[str, TableFacts],
    floor: FloorView,
) -> PolicyDriftError | None:
    """Compare a hold's snapshot with the floor now; ``kind`` is the first of
    policy, zone, adjacency, table that differs, and ``details`` lists every difference."""
    differences: dict[DriftKind, dict[str, Any]] = {}

    if policy_version != floor.policy_version:
        differences["policy"] = {"expected": policy_version, "actual": floor.policy_version}

    now_facts = floor.snapshot(tables).tables
    moved = {
        t: {"expected": facts.zone_id, "actual": now_facts[t].zone_id if t in now_facts else None}
        for t, facts in sorted(table_facts.items())
        if t not in now_facts or now_facts[t].zone_id != facts.zone_id
    }
    if moved:
        differences["zone"] = {
            "expected": sorted({facts.zone_id for facts in table_facts.values()}),
            "actual": sorted({facts.zone_id for facts in now_facts.values()}),
            "tables": moved,
        }

    now_adjacency = floor.adjacency_snapshot(tables)
    if now_adjacency.hash != adjacency.hash:
        differences["adjacency"] = {
            "expected": [list(e) for e in adjacency.edges],
            "actual": [list(e) for e in now_adjacency.edges],
            "expected_hash": adjacency.hash,
            "actual_hash": now_adjacency.hash,
        }

    changed_tables: dict[str, dict[str, Any]] = {}
    for t, facts in sorted(table_facts.items()):
        current = now_facts.get(t)
        if current is None:
            changed_tables[t] = {"missing": True}
            continue
        changes = {
            name: {"expected": getattr(facts, name), "actual": getattr(current, name)}
            for name in ("capacity", "movable", "active")
            if getattr(facts, name) != getattr(current, name)
        }
        if changes:
            changed_tables[t] = changes
    if changed_tables:
        differences["table"] = {"tables": changed_tables}

    if not differences:
        return None
    kind = next(k for k in DRIFT_KINDS if k in differences)
    return PolicyDriftError(
        kind,
        f"hold {hold_id} is stale: {', '.join(k for k in DRIFT_KINDS if k in differences)} "
        "changed since it was placed",
        details={"hold_id": hold_id, **differences[kind], "differences": differences},
    )
