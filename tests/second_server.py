"""A second, throwaway PostgreSQL server for the shard tests, beside the shared one.

``initdb`` in a temporary folder owned by ``postgres`` (trust authentication), started with
``pg_ctl`` on a free port of 127.0.0.1 with its socket in that folder, stopped
(``pg_ctl stop -m fast``) and removed by a finalizer that always runs. The binaries are the
server's own (``/usr/lib/postgresql/<version>/bin``). With ``CI=true`` a server that cannot
be started fails the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest


@dataclass(frozen=True)
class Server:
    port: int
    folder: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else [*command]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-3:])}: {done.stderr.strip() or done.stdout}")


def start_server() -> tuple[Server | None, str | None]:
    """(server, None) or (None, why not)."""
    folder = Path(tempfile.mkdtemp(prefix="sl_pg2_"))
    data = folder / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        _run(_as_postgres(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"))
        port = _free_port()
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        _run(
            _as_postgres(
                _bin("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "log"),
                "-w",
                "start",
            )
        )
        with psycopg.connect(Server(port, folder).url(), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
        return Server(port, folder), None
    except (OSError, RuntimeError, subprocess.SubprocessError, psycopg.Error) as exc:
        stop_server(folder)
        return None, f"cannot start a second PostgreSQL server: {exc}"


def stop_server(folder: Path) -> None:
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _as_postgres(_bin("pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w"),
            capture_output=True,
            timeout=120,
            check=False,
        )
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def second_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The throwaway server (started once per run, removed at the end)."""
    server, reason = start_server()
    if server is not None:
        request.addfinalizer(lambda: stop_server(server.folder))
    if server is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} -- CI=true requires it", pytrace=False)
        pytest.skip(f"{reason} (set CI=true to make this a failure)")
    yield server
