"""``run_demo``: the simulated day wired together and run into a fresh SQLite event store."""

from __future__ import annotations

import time as wall
from datetime import UTC, datetime, time
from pathlib import Path

from seatledger.application.clock import ManualClock
from seatledger.application.demo.auto import AutoSeating
from seatledger.application.demo.checks import audit_read_side
from seatledger.application.demo.config import (
    DEFAULT_DB_PATH,
    DEFAULT_SEED,
    RESTAURANT_ID,
    SERVICE_DATE,
    DemoConfig,
    demo_floor,
)
from seatledger.application.demo.database import prepare_database
from seatledger.application.demo.hosts import Hosts
from seatledger.application.demo.incidents import Manager
from seatledger.application.demo.plan import Bookings
from seatledger.application.demo.report import DemoReport
from seatledger.application.demo.simulation import Simulation
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings


def run_demo(
    db_path: Path | str = DEFAULT_DB_PATH,
    seed: int = DEFAULT_SEED,
    *,
    overwrite: bool = False,
    config: DemoConfig | None = None,
) -> DemoReport:
    """Simulate one service day into a fresh SQLite event store and report what happened."""
    config = config or DemoConfig()
    path = Path(db_path)
    prepare_database(path, overwrite=overwrite)
    started = wall.perf_counter()
    clock = ManualClock(datetime.combine(SERVICE_DATE, time(7, 0), tzinfo=UTC))
    service = AssignmentService(Settings(persistence="sqlite", sqlite_path=path), clock=clock)
    try:
        sim = Simulation(service, clock, seed)
        hosts = Hosts(sim)
        manager = Manager(sim)
        sim.open_restaurant(demo_floor())
        Bookings(sim, hosts, AutoSeating(sim, hosts)).schedule(config)
        sim.schedule_rounds()
        manager.plan()
        sim.run(until=sim.local(23, 0), after_each=manager.check)
        sim.sweep()
        sim.scan()
        final = service.get_day(RESTAURANT_ID, SERVICE_DATE)
        read_side = audit_read_side(service, final)
    finally:
        service.close()
    return sim.tally.report(
        seed=seed,
        zones=len(sim.floor.zone_rank),
        tables=len(sim.floor.tables),
        final=final,
        read_side=read_side,
        seconds=round(wall.perf_counter() - started, 3),
    )
