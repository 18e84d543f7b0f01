"""The docs stay true: every error code and every service command is documented, and every
reference to a section of the specification (docs/domain.md) names one that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seatledger.application.commands import COMMAND_METHODS
from seatledger.application.errors import ALL_CODES, http_status

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = DOCS.parent / "README.md"
ROOT = DOCS.parent
#: Where the specification is cited: the sources, the tests, the benchmarks and the docs.
CITING_FOLDERS = ("domain", "projections", "application", "tests", "bench", "docs")
#: ``§9`` (the form to use: ``docs/domain.md §9``), and older forms still about, such as
#: ``domain.md 8-9`` or ``domain.md sections 3, 4 and 16``.
SECTION_SIGN = re.compile(r"§(\d+)")
OLD_CITATION = re.compile(
    r"domain\.md\s+(?:sections?\s+)?(\d+(?:\s*(?:-|\u2013|,|and|, and)\s*\d+)*)"
)


def test_every_error_code_is_listed_with_its_http_status() -> None:
    text = (DOCS / "errors.md").read_text()
    rows = {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"^\| `([A-Z_]+)` \| `\w+` \| (\d{3}) \|", text, re.MULTILINE)
    }
    assert rows == {str(code): http_status(code) for code in ALL_CODES}


def test_every_service_command_is_documented_in_the_api_guide() -> None:
    text = (DOCS / "api.md").read_text()
    missing = [
        f"{method} ({command.__name__})"
        for command, method in COMMAND_METHODS.items()
        if f"`{method}`" not in text or f"`{command.__name__}`" not in text
    ]
    assert missing == []


def test_every_test_the_reliability_guide_names_exists() -> None:
    named = re.findall(r"(test_\w+\.py)::(test_\w+)", (DOCS / "reliability.md").read_text())
    assert named
    missing = [
        f"{module}::{test}"
        for module, test in named
        if f"def {test}(" not in (ROOT / "tests" / module).read_text()
    ]
    assert missing == []


def test_readme_gives_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_the_readme_embedding_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEATLEDGER_SQLITE_PATH", str(tmp_path / "readme.db"))
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip() == "['T1', 'T2']"


def _spec_section_numbers() -> set[int]:
    text = (DOCS / "domain.md").read_text(encoding="utf-8")
    return {int(n) for n in re.findall(r"^## (\d+)\. ", text, re.MULTILINE)}


def _citations(text: str) -> set[int]:
    cited = {int(n) for n in SECTION_SIGN.findall(text)}
    for match in OLD_CITATION.finditer(text):
        for first, last in re.findall(r"(\d+)(?:\s*[-\u2013]\s*(\d+))?", match.group(1)):
            cited.update(range(int(first), int(last or first) + 1))
    return cited


def test_the_specification_keeps_its_numbered_sections() -> None:
    assert _spec_section_numbers() == set(range(1, 18))


def test_the_citation_parser_reads_every_form() -> None:
    assert _citations("see docs/domain.md §9 and §15; (domain.md 8-9)") == {8, 9, 15}
    assert _citations("domain.md sections 3, 4 and 16, domain.md section 2") == {2, 3, 4, 16}


def test_every_citation_of_the_specification_names_an_existing_section() -> None:
    sections = _spec_section_numbers()
    files = [README, *(p for f in CITING_FOLDERS for p in sorted((ROOT / f).rglob("*.*")))]
    dangling = {
        f"{path.relative_to(ROOT)}: §{n}"
        for path in files
        if path.suffix in (".py", ".md")
        for n in _citations(path.read_text(encoding="utf-8"))
        if n not in sections
    }
    assert dangling == set()


def test_the_architecture_map_lists_every_module_and_nothing_else() -> None:
    """docs/architecture.md's module map has one line per source module of the tree."""
    text = (DOCS / "architecture.md").read_text().split("## Module map", 1)[1]
    mapped = set(
        re.findall(r"^\| `((?:domain|projections|application)/[\w/]+\.py)` \|", text, re.M)
    )
    root = DOCS.parent
    modules = {
        str(path.relative_to(root))
        for folder in ("domain", "projections", "application")
        for path in (root / folder).rglob("*.py")
    }
    assert sorted(modules - mapped) == [], "modules missing from the map"
    assert sorted(mapped - modules) == [], "the map names modules that do not exist"
