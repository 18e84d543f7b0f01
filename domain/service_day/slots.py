"""Per-table interval indexes: which bookings (or live holds) use a table, and when.

A command's conflict checks ask "who uses these tables in this window"; scanning every
booking and hold of the day made each command cost O(day size). A :class:`TableSlots` holds
one table's windows sorted by start, with the running maximum of their ends, so an overlap
query is a bisection plus a walk over the windows that can still reach the query's start:
O(log k + overlaps) for the k windows of one table, whatever the size of the day.

Values are immutable (every change returns a new one, O(k)): a copied day shares them with
the cached day it was copied from, as it shares every other value of its state.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """One window on one table: ``ref`` is the booking id or hold id, ``ordinal`` the order
    in which the day first saw it (ties are decided as the scans over the day decided them)."""

    start: datetime
    ordinal: int
    end: datetime
    ref: str


@dataclass(frozen=True, slots=True)
class TableSlots:
    """One table's windows, sorted by (start, ordinal); ``reach[i]`` is the latest end of
    ``slots[: i + 1]``, so a walk back from the last window starting before a query's end
    stops at the first prefix that ends before the query starts."""

    slots: tuple[Slot, ...] = ()
    starts: tuple[datetime, ...] = ()
    reach: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, slots: list[Slot]) -> TableSlots | None:
        """None for no windows (the table leaves the index)."""
        if not slots:
            return None
        reach: list[datetime] = []
        for slot in slots:
            reach.append(slot.end if not reach or slot.end > reach[-1] else reach[-1])
        return cls(tuple(slots), tuple(slot.start for slot in slots), tuple(reach))

    def added(self, slot: Slot) -> TableSlots:
        slots = list(self.slots)
        insort(slots, slot)
        result = TableSlots.of(slots)
        assert result is not None
        return result

    def removed(self, ref: str) -> TableSlots | None:
        slots = self.slots
        if len(slots) == 1:  # the usual table: one booking or hold on it at a time
            return None if slots[0].ref == ref else self
        return TableSlots.of([slot for slot in slots if slot.ref != ref])

    def overlapping(self, start: datetime, end: datetime) -> Iterator[Slot]:
        """The windows that overlap ``[start, end)`` (half-open: touching is no overlap; an
        empty window overlaps nothing), latest start first."""
        if not start < end:
            return
        index = bisect_left(self.starts, end) - 1
        while index >= 0 and self.reach[index] > start:
            slot = self.slots[index]
            if slot.end > start:
                yield slot
            index -= 1


def with_slot(index: dict[str, TableSlots], table_id: str, slot: Slot) -> None:
    """Add a non-empty window to ``index`` (empty windows overlap nothing: left out)."""
    if not slot.start < slot.end:
        return
    current = index.get(table_id)
    index[table_id] = (
        TableSlots((slot,), (slot.start,), (slot.end,)) if current is None else current.added(slot)
    )


def without_slot(index: dict[str, TableSlots], table_id: str, ref: str) -> None:
    current = index.get(table_id)
    if current is None:
        return
    remaining = current.removed(ref)
    if remaining is None:
        del index[table_id]
    else:
        index[table_id] = remaining
