"""Read-your-writes (docs/domain.md §11): a command's result shows the booking's members as
the members read model has them, so its assignment ids are real rows' ids.

Owns building :class:`AssignmentResult` from what a command did, the bounded re-reads of the
read model when a projection lags or the read fails (then ``""`` for rows not yet visible, and a
warning; ids are never invented: a stored command is never reported as failed), and the members
query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime

from seatledger.application.errors import STORAGE_ERRORS
from seatledger.application.results import AssignmentResult, Member
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.service_day import Outcome, SeatedTable
from seatledger.domain.values import Window
from seatledger.projections.db import ReadModelDB
from seatledger.projections.members import booking_members


class ReadYourWrites:
    """Results of assignment commands, with members read back from the members read model."""

    def __init__(self, read_models: ReadModelDB, settings: Settings, telemetry: Telemetry) -> None:
        self._read_models = read_models
        self._retries = settings.read_your_writes_retries
        self._delay_seconds = settings.read_your_writes_delay_ms / 1000
        self._telemetry = telemetry

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
        """What an assignment command returns for ``outcome``: its members as the read
        model shows them, except for a replay, which returns the original ids (section 7:
        the rows may have changed since, so the read model is not asked)."""
        recorded = self.recorded(restaurant_id, outcome)
        if outcome.replayed:
            return recorded
        booking, change = outcome.booking, outcome.change
        source = booking if change is None else change
        return recorded.model_copy(
            update={
                "members": self._visible_members(
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

    def _visible_members(
        self,
        restaurant_id: str,
        booking_id: str,
        members: tuple[SeatedTable, ...],
        window: Window,
        merge_group_id: str | None,
    ) -> list[Member]:
        """The booking's members as the read model shows them. If rows are missing, re-read
        a bounded number of times, then return them with assignment id "" (not yet visible;
        re-read later) and warn. A read that fails (the members table gone, the read-model
        database down) counts as rows missing. Ids are never invented."""
        expected = {member.table_id: member.assignment_id for member in members}
        if not expected:
            return []
        visible: dict[str, str] = {}
        failure: str | None = None
        for attempt in range(self._retries + 1):
            try:
                rows = booking_members(self._read_models, restaurant_id, booking_id)
                failure = None
            except STORAGE_ERRORS as exc:  # the command is stored: its result is not a failure
                rows, failure = [], f"{type(exc).__name__}: {exc}".strip()
            visible = {
                row.table_id: row.assignment_id
                for row in rows
                if expected.get(row.table_id) == row.assignment_id
            }
            if len(visible) == len(expected):
                break
            if attempt < self._retries:
                time.sleep(self._delay_seconds)
        missing = sorted(set(expected) - set(visible))
        if missing:
            self._telemetry.emit(
                "assignments.rows_missing",
                level=logging.WARNING,
                message="[capacity.assignments] assignment rows missing",
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                table_ids=missing,
                reads=self._retries + 1,
                **({} if failure is None else {"read_error": failure}),
            )
        return members_of(booking_id, members, visible, window, merge_group_id)


def all_members(
    booking_id: str,
    members: tuple[SeatedTable, ...],
    window: Window,
    merge_group_id: str | None,
) -> list[Member]:
    """The members with the ids the events gave them."""
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
