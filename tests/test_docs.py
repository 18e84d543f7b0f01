"""The docs stay true: every error code and every service command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seatledger.application.commands import COMMAND_METHODS
from seatledger.application.errors import ALL_CODES, http_status

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = DOCS.parent / "README.md"


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
