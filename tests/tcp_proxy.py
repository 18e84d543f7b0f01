"""A TCP proxy in front of the shared PostgreSQL server, for outage tests: the server itself is
never stopped, the proxy plays the outage.

``Proxy`` listens on 127.0.0.1 at a port the OS picks and forwards to the server. ``stop()``
drops every forwarded connection and refuses new ones (accepted, then closed at once, as a
server that is shutting down does); ``resume()`` forwards again. It counts the connections it
accepted, so a test can tell whether anyone tried to connect.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

BUFFER = 65536


class Proxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._forwarding = True
        self._closed = False
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    # --- the outage ---

    def stop(self) -> None:
        """Drop every forwarded connection; refuse new ones until :meth:`resume`."""
        with self._lock:
            self._forwarding = False
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def resume(self) -> None:
        with self._lock:
            self._forwarding = True

    @property
    def connections(self) -> int:
        """Client connections being forwarded now."""
        with self._lock:
            return len(self._open) // 2

    # --- plumbing ---

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.accepted += 1
                forwarding = self._forwarding and not self._closed
            if not forwarding:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open -= {source, sink}
        _close(source)
        _close(sink)

    def close(self) -> None:
        self._closed = True
        self.stop()
        _close(self._listener)
        self._thread.join(5)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextmanager
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running
