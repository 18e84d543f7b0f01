"""Printing a module's figures: a table for people, one JSON line for scripts."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import print_json_line, print_table
from bench.figures import Figure, load_average


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    rows = []
    for fig in figures:
        ratio = fig.ratio
        rows.append(
            [
                fig.title,
                f"{fig.value:,.3g} {fig.unit}",
                "-" if fig.baseline is None else f"{fig.baseline:,.3g} {fig.unit}",
                "-" if ratio is None else f"{ratio:.3g}",
                fig.target or "reported",
                {True: "yes", False: "no", None: "-"}[fig.met],
            ]
        )
    print_table(title, ["figure", "value", "baseline", "ratio", "target", "met"], rows)
    print_json_line(
        {
            "benchmark": title,
            "figures": [fig.as_dict() for fig in figures],
            "load_average": load_average(),
        }
    )
