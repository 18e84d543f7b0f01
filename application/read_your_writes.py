"""Read-your-writes (docs/domain.md §11): a command's result shows the booking's members with
the assignment ids the members read model gives their rows, once those rows are visible.

The ids need no read: the read model copies each member's assignment id from the change
event (:func:`~seatledger.projections.members.member_rows`), and the result takes it from the
command's own events, so the ids are equal by construction. What the
result still promises is that the rows are *visible* when it returns: the members projection's
tracking position has passed the command's notification. Where the service projects in its
own thread (in-process mode) it caught up right after its save, so nothing is read; with a
separate worker the tracking position is polled, briefly and more slowly as it waits, and the
wait ends the moment it passes. A worker that is truly behind (or a read that fails) ends the
wait at ``read_your_writes_timeout_ms``: then the rows are read once, those not visible come
back with assignment id ``""`` and a warning is logged. Ids are never invented, and a stored
command is never reported as failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from seatledger.application.errors import STORAGE_ERRORS
from seatledger.application.results import AssignmentResult, Member
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.application.unit_of_work import SaveMark
from seatledger.domain.service_day import Outcome, SeatedTable
from seatledger.domain.values import Window
from seatledger.projections.db import ReadModelDB
from seatledger.projections.members import booking_members
from seatledger.projections.runner import PageRunner

#: The first pause of the tracking-position poll, and the longest (the pause doubles).
FIRST_PAUSE_SECONDS = 0.0005
LONGEST_PAUSE_SECONDS = 0.002


class ReadYourWrites:
    """Results of assignment commands, their members visible in the members read model."""

    def __init__(
        self,
        read_models: ReadModelDB,
        settings: Settings,
        telemetry: Telemetry,
        *,
        members_runner: PageRunner | None = None,
        last_save: Callable[[], SaveMark | None] = lambda: None,
    ) -> None:
        self._read_models = read_models
        self._timeout = settings.read_your_writes_timeout_ms / 1000
        self._telemetry = telemetry
        self._runner = members_runner
        self._last_save = last_save
        #: the clock and the pause of the wait (a test may hand it its own)
        self.monotonic: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep

    def members(self, restaurant_id: str, booking_id: str) -> list[Member]:
        """The booking's rows in the members read model (what other readers see)."""
        return [
            Member(
                booking_id=row.booking_id,
                table_id=row.table_id,
                assignment_id=row.assignment_id,
                start_at=datetime.fromisoformat(row.start_at),
                end_at=datetime.fromisoformat(row.end_at),
                merge_group_id=row.merge_group_id,
            )
            for row in booking_members(self._read_models, restaurant_id, booking_id)
        ]

    def result(self, restaurant_id: str, outcome: Outcome) -> AssignmentResult:
        """What an assignment command returns for ``outcome``: its members with the ids
        its events gave them, once the read model shows them; a replay returns the original
        ids without waiting (section 7: the rows may have changed since)."""
        recorded = self.recorded(restaurant_id, outcome)
        if outcome.replayed or not recorded.members:
            return recorded
        booking, change = outcome.booking, outcome.change
        source = booking if change is None else change
        if self._visible(restaurant_id, booking.booking_id, source.members):
            return recorded
        return recorded.model_copy(
            update={
                "members": self._read_back(
                    restaurant_id,
                    booking.booking_id,
                    source.members,
                    source.window,
                    source.merge_group_id,
                )
            }
        )

    @staticmethod
    def recorded(restaurant_id: str, outcome: Outcome) -> AssignmentResult:
        """The result with the members' ids as the events hold them (no read): what the
        command ledger records, and what a replay returns."""
        booking, change = outcome.booking, outcome.change
        if change is None:  # nothing changed: the booking as it stands
            return AssignmentResult(
                restaurant_id=restaurant_id,
                booking_id=booking.booking_id,
                status=booking.status,
                table_ids=list(booking.tables),
                window=booking.window,
                zone_id=booking.zone_id,
                merge_group_id=booking.merge_group_id,
                idempotency_key=None,
                hold_id=None,
                source=None,
                changed=False,
                replayed=outcome.replayed,
                members=all_members(
                    booking.booking_id, booking.members, booking.window, booking.merge_group_id
                ),
            )
        return AssignmentResult(
            restaurant_id=restaurant_id,
            booking_id=change.booking_id,
            status=change.status,
            table_ids=list(change.tables),
            window=change.window,
            zone_id=change.zone_id,
            merge_group_id=change.merge_group_id,
            idempotency_key=change.idempotency_key,
            hold_id=change.hold_id,
            source=change.source,
            changed=not outcome.replayed,
            replayed=outcome.replayed,
            members=all_members(
                change.booking_id, change.members, change.window, change.merge_group_id
            ),
        )

    def _visible(
        self, restaurant_id: str, booking_id: str, members: tuple[SeatedTable, ...]
    ) -> bool:
        """Whether the rows of the command's members are visible, waiting at most the
        timeout: the members projection's position passed the last of its notifications
        this thread's command saved (one that saved none: the rows show these ids)."""
        mark = self._last_save()
        if mark is not None and mark.projected:
            return True  # projected in this thread, right after the save
        runner = self._runner
        target = None
        if mark is not None and runner is not None:
            target = mark.last(runner.projection.topics)
        deadline = self.monotonic() + self._timeout
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                if target is not None and runner is not None:
                    if runner.position() >= target:
                        return True
                elif self._rows_match(restaurant_id, booking_id, members):
                    return True
            except STORAGE_ERRORS:
                pass  # the read-back below reports the failure
            left = deadline - self.monotonic()
            if left <= 0:
                return False
            self.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    def _rows_match(
        self, restaurant_id: str, booking_id: str, members: tuple[SeatedTable, ...]
    ) -> bool:
        rows = booking_members(self._read_models, restaurant_id, booking_id)
        visible = {row.table_id: row.assignment_id for row in rows}
        return all(visible.get(m.table_id) == m.assignment_id for m in members)

    def _read_back(
        self,
        restaurant_id: str,
        booking_id: str,
        members: tuple[SeatedTable, ...],
        window: Window,
        merge_group_id: str | None,
    ) -> list[Member]:
        """The wait timed out: read the rows once; those not visible come back with
        assignment id "" (not yet visible; re-read later) with a warning. A read that fails
        (the members table gone, the read-model database down) counts as rows missing."""
        expected = {member.table_id: member.assignment_id for member in members}
        failure: str | None = None
        try:
            rows = booking_members(self._read_models, restaurant_id, booking_id)
        except STORAGE_ERRORS as exc:  # the command is stored: its result is not a failure
            rows, failure = [], f"{type(exc).__name__}: {exc}".strip()
        visible = {
            row.table_id: row.assignment_id
            for row in rows
            if expected.get(row.table_id) == row.assignment_id
        }
        missing = sorted(set(expected) - set(visible))
        if missing:
            self._telemetry.emit(
                "assignments.rows_missing",
                level=logging.WARNING,
                message="[capacity.assignments] assignment rows missing",
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                table_ids=missing,
                waited_ms=round(self._timeout * 1000),
                **({} if failure is None else {"read_error": failure}),
            )
        return members_of(booking_id, members, visible, window, merge_group_id)


def all_members(
    booking_id: str,
    members: tuple[SeatedTable, ...],
    window: Window,
    merge_group_id: str | None,
) -> list[Member]:
    """The members with the ids the events gave them: the ids the members read model gives
    their rows, which :func:`~seatledger.projections.members.member_rows` copies from the
    same events."""
    ids = {member.table_id: member.assignment_id for member in members}
    return members_of(booking_id, members, ids, window, merge_group_id)


def members_of(
    booking_id: str,
    members: tuple[SeatedTable, ...],
    assignment_ids: Mapping[str, str],
    window: Window,
    merge_group_id: str | None,
) -> list[Member]:
    """The members with these ids ("" where a row is not visible)."""
    return [
        Member(
            booking_id=booking_id,
            table_id=member.table_id,
            assignment_id=assignment_ids.get(member.table_id, ""),
            start_at=window.start,
            end_at=window.end,
            merge_group_id=merge_group_id,
        )
        for member in members
    ]
