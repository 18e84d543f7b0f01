"""The NATS JetStream publisher (the ``nats`` extra: nats-py).

* Subjects: ``<prefix>.<message type>.<restaurant>``, e.g.
  ``seatledger.capacity.assignment.sync.r1`` (:func:`subject`); a restaurant id is one token,
  its characters outside ``A-Z a-z 0-9 _ -`` percent-encoded (UTF-8).
* ``Nats-Msg-Id`` is the message id: the stream drops a message whose id it stored within
  its duplicate window (the PubAck then says ``duplicate``), so a relay crash or an outbox
  rebuild re-sends without storing twice, within the window.
* ``Nats-Expected-Stream`` names the configured stream: a subject captured by another stream
  fails instead of landing there.
* A message is acknowledged by the stream's PubAck; without one (a timeout, no stream, the
  server restarting) the attempt fails and the relay retries it. Up to ``max_in_flight``
  messages await their PubAck at once; each booking's messages are sent one after the other,
  each after the previous one's PubAck, so the stream holds them in log order.
* The stream is created at the first connection when ``create_stream`` is set
  (``SEATLEDGER_NATS_CREATE_STREAM``) and missing: file storage, the subjects ``<prefix>.>``
  and the duplicate window. Otherwise it must exist (docs/operations.md, *NATS JetStream*).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from seatledger.application.publishers.envelope import body, headers
from seatledger.application.settings import Settings
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import PublisherInfo, Result, in_booking_order
from seatledger.projections.runner import Reporter

_TOKEN_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def subject_token(value: str) -> str:
    """``value`` as one subject token: characters outside ``A-Za-z0-9_-`` percent-encoded
    (so ``.``, ``*``, ``>`` and spaces cannot split or widen a subject)."""
    return "".join(
        char if char in _TOKEN_SAFE else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in value
    )


def subject(prefix: str, delivery: Delivery) -> str:
    return f"{prefix}.{delivery.type}.{subject_token(delivery.restaurant_id)}"


class JetStreamPublisher:
    def __init__(
        self,
        servers: str,
        *,
        stream: str = "SEATLEDGER",
        subject_prefix: str = "seatledger",
        create_stream: bool = False,
        duplicate_window: float = 120.0,
        timeout: float = 5.0,
        max_in_flight: int = 64,
        credentials_file: Path | None = None,
        telemetry: Reporter | None = None,
    ) -> None:
        self.servers = [server.strip() for server in servers.split(",") if server.strip()]
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.create_stream = create_stream
        self.duplicate_window = duplicate_window
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.credentials_file = credentials_file
        self.telemetry = telemetry
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stream_ready = False

    @classmethod
    def from_settings(cls, settings: Settings, telemetry: Reporter) -> JetStreamPublisher:
        return cls(
            settings.publisher,
            stream=settings.nats_stream,
            subject_prefix=settings.nats_subject_prefix,
            create_stream=settings.nats_create_stream,
            duplicate_window=settings.nats_duplicate_window_seconds,
            timeout=settings.publisher_timeout_seconds,
            max_in_flight=settings.publisher_max_in_flight,
            credentials_file=settings.nats_credentials_file,
            telemetry=telemetry,
        )

    @property
    def info(self) -> PublisherInfo:
        hosts = []
        for server in self.servers:
            parts = urlsplit(server)
            hosts.append(f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}")
        return PublisherInfo("nats", f"{','.join(hosts)} stream {self.stream}")

    async def publish_batch(self, batch: Sequence[Delivery]) -> Sequence[Result]:
        try:
            js = await self._connect()
        except Exception as exc:
            return [exc] * len(batch)

        async def send(delivery: Delivery) -> None:
            await js.publish(
                subject(self.subject_prefix, delivery),
                body(delivery),
                timeout=self.timeout,
                stream=self.stream,
                headers={**headers(delivery), Header.MSG_ID: delivery.message_id},
            )

        return await in_booking_order(batch, send, max_in_flight=self.max_in_flight)

    #: Attempts to (re)connect to a server before giving up: a first connection to a broker
    #: that is down fails the batch within seconds; a connection whose broker stayed away
    #: that long closes, and the next batch connects anew.
    CONNECT_ATTEMPTS = 3

    async def _connect(self) -> JetStreamContext:
        """The connection, made on first use (and again after it closed); it reconnects by
        itself while open, and publishes fail meanwhile (their PubAck times out)."""
        if self._nc is None or self._nc.is_closed:
            self._nc = await nats.connect(
                servers=self.servers,
                name="seatledger-relay",
                connect_timeout=max(1, round(self.timeout)),
                allow_reconnect=True,
                max_reconnect_attempts=self.CONNECT_ATTEMPTS,
                reconnect_time_wait=1,
                user_credentials=str(self.credentials_file) if self.credentials_file else None,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
            self._js = self._nc.jetstream(timeout=self.timeout)
        assert self._js is not None
        if self.create_stream and not self._stream_ready:
            await self.ensure_stream(self._js)
            self._stream_ready = True
        return self._js

    async def ensure_stream(self, js: JetStreamContext) -> None:
        """Create the stream if it does not exist (an existing one is left as it is)."""
        try:
            await js.stream_info(self.stream)
            return
        except NotFoundError:
            pass
        await js.add_stream(
            StreamConfig(
                name=self.stream,
                subjects=[f"{self.subject_prefix}.>"],
                storage=StorageType.FILE,
                duplicate_window=self.duplicate_window,
            )
        )
        self._emit(
            "publisher.stream_created",
            logging.INFO,
            stream=self.stream,
            subjects=f"{self.subject_prefix}.>",
            duplicate_window_seconds=self.duplicate_window,
        )

    async def _on_error(self, exc: Exception) -> None:
        self._emit("publisher.connection_error", logging.WARNING, error=f"{exc!r}")

    async def _on_disconnected(self) -> None:
        self._emit("publisher.disconnected", logging.WARNING)

    async def _on_reconnected(self) -> None:
        self._emit("publisher.reconnected", logging.INFO)

    def _emit(self, name: str, level: int, **fields: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.emit(name, level=level, publisher="nats", **fields)

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()
