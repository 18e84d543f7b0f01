"""The quick start's publisher: one log line per message, delivered nowhere.

It lets ``seatledger relay`` run without a broker, and says so: its info says it delivers
nowhere (``relay.started`` logs a warning, ``seatledger status`` counts the messages it
marked done), and each line is ``outbox.logged``, not a delivery.
"""

from __future__ import annotations

from collections.abc import Sequence

from seatledger.application.publishers.envelope import envelope
from seatledger.application.telemetry import Telemetry
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import PublisherInfo, Result
from seatledger.projections.runner import Reporter


class LoggingPublisher:
    """Logs each message (``outbox.logged``, info) and answers success: nothing leaves the
    process."""

    info = PublisherInfo("log", "the seatledger log (delivers nowhere)", delivers=False)

    def __init__(self, telemetry: Reporter | None = None) -> None:
        self.telemetry = telemetry or Telemetry()

    async def publish_batch(self, batch: Sequence[Delivery]) -> Sequence[Result]:
        for delivery in batch:
            self.telemetry.emit(
                "outbox.logged",
                message=f"logged only, delivered nowhere: {delivery.type} {delivery.message_id}",
                **envelope(delivery),
                traceparent=delivery.traceparent,
            )
        return [None] * len(batch)

    async def close(self) -> None:
        return None
