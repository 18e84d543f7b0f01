"""``seatledger demo``: one simulated service day of one restaurant, end to end.

The demo drives the public :class:`~seatledger.application.service.AssignmentService` API only
(pydantic commands in, results or :class:`~seatledger.domain.errors.SeatLedgerError` out) the
way a busy front of house would. Most parties are seated by ``auto_assign``, many of them quoted
ahead (a 15-minute hold) and confirmed later; hosts seat the rest by hand: they hold tables and
confirm them, seat parties directly, move and unseat them, re-send commands after "timeouts",
let holds lapse and misread the floor. A manager changes the layout and the policy mid-service
while holds and quotes are open, so confirms drift: auto-assign recovers by re-quoting, except
on terminals with drift retry switched off. Large parties late in a full service find no
candidate. Time is a :class:`~seatledger.application.clock.ManualClock`; every random choice
comes from one ``random.Random(seed)`` and every command id is derived from a counter, so one
seed always writes the same event log and yields the same report (except the wall time).

Afterwards the floor is checked for double bookings *independently* of the domain: every
booking's tables and window are read back through ``get_day`` (during the service and at the
end) and any two bookings sharing a table in overlapping half-open windows are counted. The
read side is checked against what the demo saw: once the projections caught up, the outbox must
hold one ``capacity.assignment.sync`` per command that changed a booking's table set and one
``capacity.hold.confirmed`` per confirmed hold (both counted from the results the demo got
back), and the members read model must have a row for every table assigned at close.

:func:`run_demo` returns a :class:`DemoReport`; printing is the CLI's job. The modules:
``config`` (the restaurant, the day's size and shares), ``simulation`` (the engine: timed steps,
commands through the public API, the shared actions), ``plan`` (the day's guests), ``hosts``
(seating by hand), ``auto`` (auto-assign and quotes), ``incidents`` (the manager's changes),
``floor`` (the hosts' picture of the floor), ``checks`` (double bookings, the read side),
``report`` (the report and its tallies), ``database`` (the SQLite file the demo owns), ``run``
(all of it wired together).
"""

from seatledger.application.demo.checks import ReadSide, audit_read_side, find_double_bookings
from seatledger.application.demo.config import (
    DEFAULT_DB_PATH,
    DEFAULT_SEED,
    RESTAURANT_ID,
    SERVICE_DATE,
    TIMEZONE,
    DemoConfig,
    demo_floor,
)
from seatledger.application.demo.database import (
    DemoDatabaseError,
    is_demo_database,
    prepare_database,
)
from seatledger.application.demo.report import AutoAssignReport, DemoReport
from seatledger.application.demo.run import run_demo

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_SEED",
    "RESTAURANT_ID",
    "SERVICE_DATE",
    "TIMEZONE",
    "AutoAssignReport",
    "DemoConfig",
    "DemoDatabaseError",
    "DemoReport",
    "ReadSide",
    "audit_read_side",
    "demo_floor",
    "find_double_bookings",
    "is_demo_database",
    "prepare_database",
    "run_demo",
]
