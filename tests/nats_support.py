"""NATS for the publisher tests: the machine's JetStream server on 127.0.0.1:4222 (there on
every developer machine and in CI: an unreachable one fails the tests), a unique stream and
subject prefix per test (deleted afterwards), a private ``nats-server`` that a test can
restart, and reading a stream back."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


@dataclass(frozen=True)
class Stream:
    url: str
    name: str
    prefix: str

    def messages(self) -> list[StoredMessage]:
        """Every message the stream holds, in stream order."""
        return asyncio.run(_read_stream(self.url, self.name))

    def delete(self) -> None:
        asyncio.run(_delete_stream(self.url, self.name))


def unique_stream(url: str = NATS_URL) -> Stream:
    tag = uuid.uuid4().hex[:12]
    return Stream(url, f"SLTEST_{tag}", f"sltest{tag}")


def require_nats(url: str = NATS_URL) -> None:
    host, port = url.removeprefix("nats://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return
    except OSError as exc:
        pytest.fail(f"the NATS server with JetStream at {url} is not running: {exc}")


@pytest.fixture
def stream() -> Iterator[Stream]:
    """A unique stream and subject prefix on the machine's server, deleted afterwards."""
    require_nats()
    found = unique_stream()
    try:
        yield found
    finally:
        found.delete()


async def _read_stream(url: str, name: str) -> list[StoredMessage]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(name, seq)
            headers = {str(k): str(v) for k, v in (msg.headers or {}).items()}
            out.append(StoredMessage(seq, str(msg.subject), headers, msg.data or b""))
        return out
    finally:
        await nc.close()


async def _delete_stream(url: str, name: str) -> None:
    nc = await nats.connect(url, max_reconnect_attempts=1)
    try:
        await nc.jetstream().delete_stream(name)
    except NotFoundError:
        pass
    finally:
        await nc.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A ``nats-server -js`` of the test's own, on a free port, with its store in a folder
    that survives restarts; stopped (SIGTERM: a clean shutdown) by :meth:`stop`."""

    START_SECONDS = 20.0

    def __init__(self, store: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed (the CI image and the machine have it)")
        self.binary = binary
        self.store = store
        self.port = free_port()
        self.process: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"nats-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"nats-server did not listen on {self.port} within {self.START_SECONDS} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[PrivateServer]:
    server = PrivateServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()
