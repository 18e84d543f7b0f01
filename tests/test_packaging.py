"""The wheel as a new user gets it: one ``seatledger`` namespace, a plugin that cannot hurt.

The wheel is built from this checkout and installed into a fresh virtual environment beside a
small host application that has its own ``domain``, ``application`` and ``projections``
packages. The host's pytest run must load the plugin without freezegun installed, then run a
scenario test through the ``seatledger_scenario`` fixture once the ``testing`` extra is in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = {"domain", "projections", "application"}

HOST_TEST_WITHOUT_FIXTURES = """
import application
import domain
import projections


def test_the_host_keeps_its_own_packages():
    assert (domain.OWNER, application.OWNER, projections.OWNER) == ("host",) * 3
"""

HOST_SCENARIO_TEST = """
from datetime import date, time

import domain
from seatledger.application import (
    AutoAssign,
    CreateRestaurant,
    ErrorCode,
    RegisterBooking,
    Table,
    Zone,
)


def test_a_party_is_seated(seatledger_scenario):
    assert domain.OWNER == "host"
    s = seatledger_scenario
    s.given(
        CreateRestaurant(
            restaurant_id="host-bistro",
            zones=[Zone(zone_id="main")],
            tables=[Table(table_id="T1", zone_id="main", capacity=4)],
            command_id="c-create",
        ),
        RegisterBooking(
            restaurant_id="host-bistro",
            booking_id="b1",
            party_size=2,
            service_date=date(2026, 6, 1),
            start_time=time(19, 0),
            command_id="c-register",
        ),
    )
    result = s.when(
        AutoAssign(restaurant_id="host-bistro", booking_id="b1", command_id="c-seat")
    ).result
    assert result.assignment.table_ids == ["T1"]
    assert ErrorCode.BOOKING_NOT_FOUND == "BOOKING_NOT_FOUND"
"""


def _packages_in_tree() -> set[str]:
    found = set()
    for folder in SOURCE_FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            found.add(".".join(("seatledger", *parts)))
    return found


def test_every_source_package_is_listed_in_the_build_configuration() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _packages_in_tree()
    assert config["package-dir"] == {f"seatledger.{f}": f for f in SOURCE_FOLDERS}


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], check=False, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy of the sources: an in-tree build would reuse build/lib, where modules
    # deleted since an earlier build linger and would be packed into the wheel
    source = out / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", ".typecheck", "*_cache", "__pycache__"
        ),
    )
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source], cwd=out)
    (built,) = out.glob("seatledger-*.whl")
    return built


def test_the_wheel_installs_everything_under_one_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"seatledger"}
    assert "seatledger/domain/py.typed" in names
    assert "seatledger/__init__.py" not in names  # a namespace: other distributions may share it


def _host_app(root: Path) -> Path:
    app = root / "host"
    for package in sorted(SOURCE_FOLDERS):
        (app / package).mkdir(parents=True)
        (app / package / "__init__.py").write_text('OWNER = "host"\n')
    (app / "tests").mkdir()
    (app / "tests" / "test_host.py").write_text(HOST_TEST_WITHOUT_FIXTURES)
    return app


def test_a_host_app_with_its_own_domain_package_uses_the_wheel(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    pip: list[str | Path] = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, wheel, "pytest"], cwd=tmp_path)
    app = _host_app(tmp_path)

    # outside the host, the generic names are not importable: seatledger installed none
    missing = subprocess.run(
        [python, "-c", "import domain"], check=False, cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "No module named 'domain'" in missing.stderr
    _run([python, "-c", "import seatledger.application as a; a.AssignmentService"], tmp_path)
    # the demo and its sample floor need nothing of the testing extra (no freezegun here)
    _run(
        [python, "-c", "from seatledger.application.demo import demo_floor; demo_floor()"], tmp_path
    )

    # the plugin loads (pytest11 entry point) in a host without freezegun and harms nothing
    done = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=app)
    assert "1 passed" in done.stdout
    plugins = _run([python, "-m", "pytest", "--trace-config", "--co", "-q", "tests"], cwd=app)
    assert "seatledger.application.testing.pytest_plugin" in plugins.stdout

    # with the testing extra, a scenario test of the host runs through the fixture
    _run([*pip, f"{wheel}[testing]"], cwd=tmp_path)
    (app / "tests" / "test_scenario.py").write_text(HOST_SCENARIO_TEST)
    done = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=app)
    assert "2 passed" in done.stdout
