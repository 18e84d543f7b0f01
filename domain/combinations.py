"""The planner's search for combinations of tables: bounded, pruned, counted.

Two searches over one zone's movable tables. ``connected_sets`` grows sets through the
adjacency edges, reaching each connected set exactly once from its smallest table (the ESU
scheme of Wernicke), so the work follows the floor's edges; ``any_sets`` takes tables in id
order regardless of adjacency (relaxed plans). Both yield only the *minimal* sets that seat the
party: two or more tables of which none can be left out leaving a set that still seats the
party and is itself a candidate (connected if the search requires it; a single table only if
it is in ``settled``). A set that seats the party is therefore never grown: a table added to it
only adds slack and a table, so the larger set ranks below it.

They prune a set, and everything grown from it, when it has more seats than ``max_capacity``
(tables only add seats), when no choice of the zone's capacities (a small knapsack) can bring
it to between ``party_size`` and ``max_capacity`` within ``k`` tables, or when ``promising``
says nothing grown from it could still make the caller's shortlist, given lower bounds on the
rank key: slack, table count and sorted table ids. Every set the search examines costs one
unit of the :class:`Budget`; when the budget runs out the search stops where it is.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from seatledger.domain.layout import FloorView, Table

#: Gives the smallest sorted ids a set could hold; asked only when slack and count tie.
LowestIds = Callable[[], tuple[str, ...]]
#: ``promising(slack, table_count, lowest_ids)``: whether a set ranking no better than these
#: lower bounds could still make the caller's shortlist.
Promising = Callable[[int, int, LowestIds], bool]


def always(slack: int, table_count: int, lowest_ids: LowestIds) -> bool:
    """No shortlist: every set is worth finding."""
    return True


@dataclass
class Budget:
    """Units of work one plan may spend: one per table set examined, whether it becomes a
    candidate or is pruned. A count, not a clock, so the same input always does the same work."""

    limit: int
    spent: int = 0
    exhausted: bool = False

    def take(self) -> bool:
        """Spend one unit; False (and ``exhausted`` set) when none is left."""
        if self.spent >= self.limit:
            self.exhausted = True
            return False
        self.spent += 1
        return True


@dataclass(frozen=True)
class Goal:
    """What the sets must do: seat ``party_size`` on at most ``max_capacity`` seats and ``k``
    tables. ``settled`` are the single tables that are candidates on their own (never grown)."""

    party_size: int
    max_capacity: int
    k: int
    settled: frozenset[str] = frozenset()


#: Lower bounds on (slack, table count) for every set grown from a given one.
Outlook = tuple[int, int]


class _Search:
    """One zone's tables, the goal, the budget and the shortlist's bound."""

    def __init__(
        self, tables: Iterable[Table], goal: Goal, budget: Budget | None, promising: Promising
    ) -> None:
        self.tables = sorted(tables, key=lambda t: t.table_id)
        self.ids = [t.table_id for t in self.tables]
        self.position = {table_id: index for index, table_id in enumerate(self.ids)}
        self.by_id = {t.table_id: t for t in self.tables}
        self.goal = goal
        self.budget = budget if budget is not None else Budget(limit=2**62)
        self.promising = promising
        self.sums = self._sums()
        self._outlooks: dict[tuple[int, int, int], Outlook | None] = {}

    def _sums(self) -> list[list[int]]:
        """sums[r]: the seat counts (up to max_capacity) that r of the zone's tables can make,
        ascending (a bounded knapsack over the distinct capacities)."""
        k, most = self.goal.k, self.goal.max_capacity
        reach: list[set[int]] = [{0}] + [set() for _ in range(k)]
        copies = Counter(t.capacity for t in self.tables)
        for capacity, count in sorted(copies.items()):
            for _ in range(min(count, k)):
                for r in range(k, 0, -1):
                    reach[r] |= {s + capacity for s in reach[r - 1] if s + capacity <= most}
        return [sorted(r) for r in reach]

    def outlook(self, seats: int, count: int, at_least: int = 1) -> Outlook | None:
        """The least (slack, table count) of a set grown from one with ``seats`` on ``count``
        tables by at least ``at_least`` more (None: none can seat the party within bounds).
        It pretends every table of the zone is still free, so it never overestimates."""
        key = (seats, count, at_least)
        if key not in self._outlooks:
            goal = self.goal
            best: Outlook | None = None
            for more in range(at_least, goal.k - count + 1):
                sums = self.sums[more]
                index = bisect.bisect_left(sums, goal.party_size - seats)
                if index < len(sums) and seats + sums[index] <= goal.max_capacity:
                    found = (seats + sums[index] - goal.party_size, count + more)
                    best = found if best is None else min(best, found)
            self._outlooks[key] = best
        return self._outlooks[key]

    def minimal(self, chosen: tuple[str, ...], seats: int, floor: FloorView | None) -> bool:
        """No table can be left out leaving a candidate (connected, if ``floor`` is given)."""
        for table_id in chosen:
            if seats - self.by_id[table_id].capacity < self.goal.party_size:
                continue
            rest = [t for t in chosen if t != table_id]
            if len(rest) == 1:
                if rest[0] in self.goal.settled:
                    return False
            elif floor is None or floor.is_connected(rest):
                return False
        return True

    def examine(
        self, chosen: tuple[str, ...], seats: int, floor: FloorView | None
    ) -> tuple[bool, Outlook | None]:
        """Spend a unit on a set: whether to yield it, and the outlook of growing it (None:
        do not grow it)."""
        goal = self.goal
        if not self.budget.take() or seats > goal.max_capacity:
            return False, None
        count = len(chosen)
        if seats >= goal.party_size and (count >= 2 or chosen[0] in goal.settled):
            return count >= 2 and self.minimal(chosen, seats, floor), None
        return False, self.outlook(seats, count)

    # --- adjacency required ---

    def connected(self, floor: FloorView) -> Iterator[tuple[Table, ...]]:
        members = set(self.ids)
        start = self.outlook(0, 0, at_least=2)
        if start is None:
            return
        slack, count = start
        for index, root in enumerate(self.ids):
            # every set grown from this root or a later one has ids from ids[index:] on
            if not self.promising(slack, count, partial(self.lowest_from, (), index, count)):
                return
            near = floor.neighbours(root) & members
            yield from self.grow(
                floor,
                members,
                chosen=(root,),
                seats=self.by_id[root].capacity,
                extension={n for n in near if n > root},
                covered={root} | near,
            )
            if self.budget.exhausted:
                return

    def grow(
        self,
        floor: FloorView,
        members: set[str],
        *,
        chosen: tuple[str, ...],
        seats: int,
        extension: set[str],
        covered: set[str],
    ) -> Iterator[tuple[Table, ...]]:
        found, outlook = self.examine(chosen, seats, floor)
        if found:
            yield tuple(self.by_id[t] for t in chosen)
        if outlook is None:
            return
        slack, count = outlook
        lowest = partial(self.lowest_ids, chosen, extension, covered, count)
        if not self.promising(slack, count, lowest):
            return
        root = chosen[0]
        remaining = set(extension)
        for nxt in sorted(extension):
            remaining.discard(nxt)
            near = floor.neighbours(nxt) & members
            yield from self.grow(
                floor,
                members,
                chosen=(*chosen, nxt),
                seats=seats + self.by_id[nxt].capacity,
                # ESU: only neighbours of the newest table that no earlier table touches
                extension=remaining | {n for n in near if n > root and n not in covered},
                covered=covered | near | {nxt},
            )
            if self.budget.exhausted:
                return

    def lowest_ids(
        self, chosen: tuple[str, ...], extension: set[str], covered: set[str], count: int
    ) -> tuple[str, ...]:
        """The ``count`` smallest ids any set grown from ``chosen`` could hold: its own, the
        extension's, and tables no member touches yet (only those can join later)."""
        lowest: list[str] = []
        for table_id in self.ids[self.position[chosen[0]] :]:
            if table_id in chosen or table_id in extension or table_id not in covered:
                lowest.append(table_id)
                if len(lowest) == count:
                    break
        return tuple(lowest)

    def lowest_from(self, chosen: tuple[str, ...], index: int, count: int) -> tuple[str, ...]:
        """The ``count`` smallest ids of ``chosen`` (all below ``ids[index]``) grown by tables
        from ``ids[index]`` on."""
        return (*chosen, *self.ids[index : index + count - len(chosen)])

    # --- adjacency relaxed ---

    def any(self) -> Iterator[tuple[Table, ...]]:
        start = self.outlook(0, 0, at_least=2)
        if start is not None:
            yield from self.pick((), 0, 0, start)

    def pick(
        self, chosen: tuple[str, ...], start: int, seats: int, outlook: Outlook
    ) -> Iterator[tuple[Table, ...]]:
        """Grow ``chosen`` by tables from ``start`` on; ``outlook`` bounds the results."""
        slack, count = outlook
        for index in range(start, len(self.ids)):
            # results from here on hold chosen plus ids from this one on, in order
            if not self.promising(slack, count, partial(self.lowest_from, chosen, index, count)):
                return
            table_id = self.ids[index]
            grown = (*chosen, table_id)
            more = seats + self.by_id[table_id].capacity
            found, further = self.examine(grown, more, None)
            if found:
                yield tuple(self.by_id[t] for t in grown)
            if self.budget.exhausted:
                return
            if further is not None:
                yield from self.pick(grown, index + 1, more, further)
                if self.budget.exhausted:
                    return


def connected_sets(
    floor: FloorView,
    tables: Iterable[Table],
    goal: Goal,
    *,
    budget: Budget | None = None,
    promising: Promising = always,
) -> Iterator[tuple[Table, ...]]:
    """The minimal connected sets of up to ``goal.k`` tables that seat the party, each once."""
    return _Search(tables, goal, budget, promising).connected(floor)


def any_sets(
    tables: Iterable[Table],
    goal: Goal,
    *,
    budget: Budget | None = None,
    promising: Promising = always,
) -> Iterator[tuple[Table, ...]]:
    """The minimal sets of up to ``goal.k`` tables that seat the party, adjacency aside."""
    return _Search(tables, goal, budget, promising).any()
