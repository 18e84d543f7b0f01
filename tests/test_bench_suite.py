"""The benchmark harness (``make bench``) in its tiny mode: SQLite and memory, seconds. Nothing
here is timed or asserts a speed; it checks that the harness still runs, that its JSON has
the promised shape, and that refreshing docs/benchmarks.md replaces only the generated part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import suite
from bench.__main__ import BENCHMARKS
from bench.figures import BEGIN_MARKER, END_MARKER, Figure, meets, refresh_docs

FIGURE_KEYS = {
    "name",
    "title",
    "value",
    "unit",
    "baseline",
    "ratio",
    "target",
    "target_of",
    "met",
    "command",
    "details",
}


def test_the_tiny_suite_writes_its_json_and_refreshes_only_the_generated_section(
    tmp_path: Path,
) -> None:
    head = "# Benchmarks\n\nHand-written: what each figure means.\n\n"
    tail = "\n\n## planner\n\nHand-written too, after the markers.\n"
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"{head}{BEGIN_MARKER}\nlast run's table\n{END_MARKER}{tail}")
    out = tmp_path / "results.json"

    payload = suite.run(
        suite.TINY,
        out=out,
        docs=docs,
        only={"commands-sqlite", "big-day", "many-restaurants"},
        command="python -m bench suite --tiny",
    )

    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(payload))
    assert data["errors"] == []
    assert data["run"]["mode"] == "tiny"
    assert {"command", "timestamp", "commit", "dirty", "seconds"} <= set(data["run"])
    machine = data["machine"]
    assert {"hostname", "kind", "cores", "python", "postgres", "load_average"} <= set(machine)
    assert set(machine["load_average"]) == {"start", "end"}
    names = [figure["name"] for figure in data["figures"]]
    assert {"commands_sqlite_default", "warm_command_big_day", "many_restaurants"} <= set(names)
    for figure in data["figures"]:
        assert set(figure) == FIGURE_KEYS, figure["name"]
        assert set(figure["baseline"]) == {"value", "what"}
        assert isinstance(figure["value"], float)
        if figure["target"] is None:
            assert figure["met"] is None
        else:
            assert isinstance(figure["met"], bool)

    text = docs.read_text()
    assert text.startswith(head + BEGIN_MARKER + "\n")
    assert text.endswith(END_MARKER + tail)
    assert "last run's table" not in text
    for figure in data["figures"]:
        assert figure["title"] in text


def test_refreshing_docs_without_markers_appends_them(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n")
    refresh_docs(docs, "| a | b |")
    assert docs.read_text() == f"# Benchmarks\n\n{BEGIN_MARKER}\n| a | b |\n{END_MARKER}\n"
    refresh_docs(docs, "| c | d |")
    assert docs.read_text() == f"# Benchmarks\n\n{BEGIN_MARKER}\n| c | d |\n{END_MARKER}\n"


def test_targets_read_as_comparisons_of_the_ratio_or_the_value() -> None:
    assert meets(0.7, ">= 0.7") and not meets(0.69, ">= 0.7")
    assert meets(1.2, "<= 1.2") and not meets(1.21, "<= 1.2")
    with pytest.raises(ValueError):
        meets(1.0, "about 1")
    rate = Figure("r", "r", 70.0, "cmd/s", 100.0, "bare", ">= 0.7", "cmd")
    assert rate.ratio == pytest.approx(0.7) and rate.met is True
    first = Figure("f", "f", 120.0, "ms", 20.0, "small", "<= 100", "cmd", target_of="value")
    assert first.met is False
    reported = Figure("c", "c", 1.0, "ms", None, "", None, "cmd")
    assert reported.ratio is None and reported.met is None


def test_every_registered_benchmark_has_a_main() -> None:
    for name, benchmark in BENCHMARKS.items():
        assert callable(benchmark.load().main), name
