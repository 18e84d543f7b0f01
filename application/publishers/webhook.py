"""The webhook publisher: one signed HTTP POST per outbox message.

Each message is POSTed to the URL with the envelope as its JSON body and these headers:

* ``Idempotency-Key``: the message id (the same on every retry, across relays and rebuilds);
* ``Seatledger-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes under the
  secret ``SEATLEDGER_WEBHOOK_SECRET``;
* ``Seatledger-Message-Id``, ``Seatledger-Message-Type`` and, for a traced command,
  ``traceparent``.

Any 2xx answer is the acknowledgement; anything else (another status, a redirect, a timeout,
a refused connection) fails the attempt, which the relay retries with its back-off. Requests
run in a pool of ``max_in_flight`` threads (the standard library's HTTP client), each
booking's messages one after the other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from seatledger.application.publishers.envelope import body, headers
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import PublisherInfo, Result, in_booking_order

SIGNATURE_HEADER = "Seatledger-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookError(Exception):
    """The endpoint did not acknowledge a message."""


def signature(secret: bytes, payload: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 hex digest."""
    return "sha256=" + hmac.new(secret, payload, hashlib.sha256).hexdigest()


def verify(secret: bytes, payload: bytes, header: str) -> bool:
    """What a consumer does (constant-time compare): True if ``header`` signs ``payload``."""
    return hmac.compare_digest(signature(secret, payload), header)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not an acknowledgement: it fails the attempt (an HTTPError)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookPublisher:
    def __init__(
        self, url: str, *, secret: bytes, timeout: float = 5.0, max_in_flight: int = 16
    ) -> None:
        if not secret:
            raise ValueError("a webhook publisher needs a secret")
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._opener = urllib.request.build_opener(_NoRedirects)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def info(self) -> PublisherInfo:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return PublisherInfo("webhook", urlunsplit((parts.scheme, netloc, parts.path, "", "")))

    async def publish_batch(self, batch: Sequence[Delivery]) -> Sequence[Result]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_in_flight, "seatledger-webhook")
        loop = asyncio.get_running_loop()
        pool = self._pool

        async def send(delivery: Delivery) -> None:
            await loop.run_in_executor(pool, self.post, delivery)

        return await in_booking_order(batch, send, max_in_flight=self.max_in_flight)

    def request(self, delivery: Delivery) -> urllib.request.Request:
        """The POST for one message (body, idempotency key, signature, trace context)."""
        data = body(delivery)
        return urllib.request.Request(
            self.url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: delivery.message_id,
                SIGNATURE_HEADER: signature(self.secret, data),
                **headers(delivery),
            },
        )

    def post(self, delivery: Delivery) -> None:
        """Send one message; raise unless the endpoint answered 2xx."""
        try:
            with self._opener.open(self.request(delivery), timeout=self.timeout) as response:
                status = response.status
                text = _excerpt(response)
        except urllib.error.HTTPError as err:
            status, text = err.code, _excerpt(err)
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise WebhookError(f"POST {self.info.target}: {reason}") from exc
        if not 200 <= status < 300:
            raise WebhookError(f"POST {self.info.target} answered {status}: {text}")

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _excerpt(response: IO[bytes]) -> str:
    """The start of an answer's body, for ``last_error``."""
    try:
        return response.read(200).decode("utf-8", "replace").strip()
    except OSError:
        return ""
