"""Readable tables (rich) of the audit and time-travel answers, for the command line."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from seatledger.application.audit.report import (
    AuditReport,
    BookingTimeline,
    FloorAt,
    FloorDiff,
)


def _ok(ok: bool) -> str:
    return "[bold green]ok[/]" if ok else "[bold red]DIFFERS[/]"


def print_audit(report: AuditReport, console: Console) -> None:
    end = f"position {report.last_position}"
    table = Table(title=f"audit: {report.events} events replayed (to {end})")
    for column in ("read model", "position", "live", "rebuilt", "missing", "extra", "changed"):
        table.add_column(column, justify="left" if column == "read model" else "right")
    table.add_column("")
    for rm in report.read_models:
        if not rm.compared:
            table.add_row(
                rm.name,
                str(rm.position),
                str(rm.live),
                "-",
                "-",
                "-",
                "-",
                "[yellow]not compared (live is past --until)[/]",
            )
            continue
        table.add_row(
            rm.name,
            str(rm.position),
            str(rm.live),
            str(rm.rebuilt),
            str(rm.missing),
            str(rm.extra),
            str(rm.changed),
            _ok(rm.ok),
        )
    console.print(table)
    for rm in report.read_models:
        if rm.compared:
            console.print(f"{rm.name} digest: {rm.rebuilt_digest}", highlight=False, soft_wrap=True)
    differences = [d for rm in report.read_models for d in rm.differences]
    if differences:
        listing = Table(title="differences (first of each kind)")
        for column in ("kind", "table", "key", "position", "columns"):
            listing.add_column(column)
        for d in differences:
            listing.add_row(
                d.kind,
                d.table,
                ", ".join(f"{k}={v}" for k, v in d.key.items()),
                str(d.position),
                ", ".join(d.columns),
            )
        console.print(listing)
    inv = report.invariants
    console.print(
        f"invariants: {inv.events_checked} events checked, "
        + (
            "[bold green]no violation[/]"
            if not inv.violations
            else f"[bold red]{inv.violations} violation(s)[/]"
        )
    )
    if inv.first:
        violations = Table(title="violations (first)")
        for column in ("position", "kind", "instant", "bookings", "tables", "what"):
            violations.add_column(column)
        for v in inv.first:
            violations.add_row(
                str(v.position),
                v.kind,
                v.instant,
                ", ".join(v.booking_ids),
                ", ".join(v.table_ids),
                v.message,
            )
        console.print(violations)
    console.print(f"log digest: {report.log.head} ({report.log.events} events)", soft_wrap=True)
    cp = report.log.checkpoint
    if cp is not None:
        console.print(
            f"checkpoint {cp.path}: {cp.action}, {cp.events} events to position "
            f"{cp.last_position}: {_ok(cp.ok)}"
        )
        for finding in cp.findings:
            console.print(f"  [red]{finding.kind}[/] {finding.message}", highlight=False)
    console.print(f"[bold]{'OK' if report.ok else 'NOT OK'}[/] ({report.seconds:.2f} s)")


def print_floor(answer: FloorAt, console: Console) -> None:
    when = f"at {answer.at}" if answer.at else f"at position {answer.position}"
    table = Table(title=f"{answer.restaurant_id} on {answer.service_date}, {when}")
    for column in ("table", "zone", "seats", "assigned to", "held for"):
        table.add_column(column)
    for t in answer.tables:
        assigned = "\n".join(
            f"{a.booking_id} {a.window_start[11:16]}-{a.window_end[11:16]} ({a.source})"
            for a in t.assignments
        )
        held = "\n".join(
            f"{h.booking_id} {h.window_start[11:16]}-{h.window_end[11:16]} "
            f"(hold {h.hold_id[:8]}, until {h.expires_at[11:19]})"
            for h in t.holds
        )
        inactive = "" if t.active in (True, None) else " (inactive)"
        table.add_row(t.table_id + inactive, t.zone_id or "", str(t.capacity or ""), assigned, held)
    console.print(table)


def print_timeline(answer: BookingTimeline, console: Console) -> None:
    table = Table(
        title=f"booking {answer.booking_id} ({answer.restaurant_id}, {answer.service_date})"
    )
    for column in ("at", "event", "actor", "command", "source", "tables", "why / details"):
        table.add_column(column)
    for e in answer.entries:
        before, after = ",".join(e.tables_before) or "-", ",".join(e.tables_after) or "-"
        tables = after if before == after else f"{before} -> {after}"
        why = " ".join(
            part
            for part in (
                e.reason or "",
                f"kind={e.drift_kind}" if e.drift_kind else "",
                f"status={e.status}" if e.event == "BookingClosed" else "",
                f"hold={e.hold_id[:8]}" if e.hold_id else "",
                f"key={e.idempotency_key}" if e.idempotency_key else "",
            )
            if part
        )
        table.add_row(e.at[11:19], e.event, e.actor_id, e.command_id, e.source or "", tables, why)
    console.print(table, highlight=False)


def print_diff(answer: FloorDiff, console: Console) -> None:
    table = Table(
        title=f"{answer.restaurant_id} on {answer.service_date}: {answer.start} -> {answer.end}"
    )
    for column in ("table", "what", "change", "booking", "before", "after"):
        table.add_column(column)

    def window(values: dict[str, Any] | None) -> str:
        if values is None:
            return "-"
        return f"{values['window_start'][11:16]}-{values['window_end'][11:16]}"

    for c in answer.changes:
        table.add_row(c.table_id, c.kind, c.change, c.booking_id, window(c.before), window(c.after))
    if not answer.changes:
        table.add_row("(nothing changed)", "", "", "", "", "")
    console.print(table)
