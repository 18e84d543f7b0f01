"""What ``make bench`` records: figures with their baseline, ratio and target; the machine
label; the JSON file; the generated section of docs/benchmarks.md.

A :class:`Figure` is one measured value beside a baseline measured in the same run. Its
``ratio`` is ``value / baseline`` (so a rate's target reads ``>= 0.7`` and a latency's
``<= 1.2``); a target may apply to the value itself instead (``target_of="value"``: the
first command after a restart, ``<= 100`` ms). A figure without a target is reported only
(``target`` and ``met`` are ``None``): CPU per command, for instance.
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

#: The markers around the generated part of docs/benchmarks.md (the rest is hand-written).
BEGIN_MARKER = "<!-- bench:begin -->"
END_MARKER = "<!-- bench:end -->"

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass
class Figure:
    """One figure of the run. ``name`` is stable (scripts key on it); ``command`` is the
    command that measures it alone."""

    name: str
    title: str
    value: float
    unit: str
    baseline: float | None
    baseline_what: str
    target: str | None
    command: str
    target_of: Literal["ratio", "value"] = "ratio"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        subject = self.ratio if self.target_of == "ratio" else self.value
        if subject is None or math.isnan(subject):
            return False
        return meets(subject, self.target)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        ratio = self.ratio
        data.pop("baseline_what")
        data["value"] = _round(self.value)
        data["baseline"] = {"value": _round(self.baseline), "what": self.baseline_what}
        data["ratio"] = None if ratio is None else round(ratio, 3)
        data["met"] = self.met
        return data


def meets(subject: float, target: str) -> bool:
    """``meets(0.8, ">= 0.7")``: the comparison a target string states."""
    op, _, number = target.strip().partition(" ")
    if op not in _COMPARISONS:
        raise ValueError(f"a target reads '<op> <number>' with op in {sorted(_COMPARISONS)}")
    return _COMPARISONS[op](subject, float(number))


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return value
    return float(f"{value:.4g}") if abs(value) < 1000 else round(value, 1)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty sample."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


# --- the machine -----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _virtual() -> bool:
    try:
        return " hypervisor" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def postgres_version(conninfo: str | None) -> str | None:
    if conninfo is None:
        return None
    try:
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_label(conninfo: str | None) -> dict[str, Any]:
    """What the figures were measured on (absolute figures mean nothing without it)."""
    return {
        "hostname": socket.gethostname(),
        "kind": f"{_cpu_model()}, {'virtual machine' if _virtual() else 'bare metal'}",
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "postgres": postgres_version(conninfo),
        "platform": platform.platform(),
    }


def commit_label(root: Path) -> dict[str, Any]:
    """The commit measured, and whether the tree had uncommitted changes."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short=12", "HEAD") or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- output ----------------------------------------------------------------------------------


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def _cell(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def markdown_section(payload: dict[str, Any]) -> str:
    """The generated part of docs/benchmarks.md: the run's label and its table of figures."""
    run, machine = payload["run"], payload["machine"]
    load = machine["load_average"]
    lines = [
        f"Generated by `{run['command']}` ({run['mode']} mode) on {run['timestamp']}, commit"
        f" `{run['commit']}`{' (with uncommitted changes)' if run['dirty'] else ''}, in"
        f" {run['seconds']:.0f} s. Machine: {machine['kind']}, {machine['cores']} cores,"
        f" Python {machine['python']}, PostgreSQL {machine['postgres'] or 'not used'};"
        f" load average {load['start'][0]} at the start, {load['end'][0]} at the end.",
        "",
        "| figure | value | baseline (same run) | ratio | target | met | measured by |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for fig in payload["figures"]:
        base = fig["baseline"]
        baseline = (
            f"{_cell(base['value'], fig['unit'])}: {base['what']}"
            if base["value"] is not None
            else base["what"] or "-"
        )
        target = fig["target"] or "reported"
        if fig["target"] and fig["target_of"] == "value":
            target = f"value {fig['target']} {fig['unit']}"
        met = {True: "**yes**", False: "no", None: "-"}[fig["met"]]
        ratio = "-" if fig["ratio"] is None else f"{fig['ratio']:.3g}"
        lines.append(
            f"| {fig['title']} | {_cell(fig['value'], fig['unit'])} | {baseline} | {ratio}"
            f" | {target} | {met} | `{fig['command']}` |"
        )
    for error in payload["errors"]:
        lines.append(f"| {error['section']}: **failed** | - | - | - | - | no | {error['error']} |")
    if payload.get("notes"):
        lines.append("")
        lines.extend(f"* {note}" for note in payload["notes"])
    return "\n".join(lines)


def refresh_docs(path: Path, section: str) -> None:
    """Replace what lies between the markers (appending the markers at the end if the file
    has none); everything else in the file stays as it is, byte for byte."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN_MARKER}\n{section.strip()}\n{END_MARKER}"
    begin, end = text.find(BEGIN_MARKER), text.find(END_MARKER)
    if begin == -1 and end == -1:
        text = f"{text.rstrip()}\n\n{block}\n" if text else f"{block}\n"
    elif begin == -1 or end < begin:
        raise ValueError(f"{path}: the markers {BEGIN_MARKER} / {END_MARKER} are out of order")
    else:
        text = text[:begin] + block + text[end + len(END_MARKER) :]
    path.write_text(text)
