"""Publishers: where the relay delivers outbox messages.

* ``log`` — :class:`~.log.LoggingPublisher`, the quick start's: logs each message and
  delivers nowhere (it says so in the logs and in ``seatledger status``);
* ``nats://…`` — :class:`~.jetstream.JetStreamPublisher` (the ``nats`` extra): NATS
  JetStream, the message id as ``Nats-Msg-Id``;
* ``https://…`` — :class:`~.webhook.WebhookPublisher`: an HTTP POST per message, signed.

Every one sends the same body (:mod:`.envelope`) and implements
:class:`seatledger.projections.relay.Publisher`. :func:`publisher_for` picks one from the
settings (``SEATLEDGER_PUBLISHER``, or ``seatledger relay --publisher``); the NATS client is
imported only when a ``nats://`` publisher is asked for.
"""

from __future__ import annotations

from seatledger.application.publishers.log import LoggingPublisher
from seatledger.application.settings import Settings
from seatledger.projections.relay import Publisher
from seatledger.projections.runner import Reporter


class PublisherUnavailableError(Exception):
    """The publisher the settings name cannot be built here (a missing extra)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def publisher_for(settings: Settings, telemetry: Reporter) -> Publisher:
    """The publisher ``settings.publisher`` names."""
    kind = settings.publisher_kind
    if kind == "log":
        return LoggingPublisher(telemetry)
    if kind == "webhook":
        from seatledger.application.publishers.webhook import WebhookPublisher  # noqa: PLC0415

        assert settings.webhook_secret is not None  # the settings insist on one
        return WebhookPublisher(
            settings.publisher,
            secret=settings.webhook_secret.get_secret_value().encode(),
            timeout=settings.publisher_timeout_seconds,
            max_in_flight=settings.publisher_max_in_flight,
        )
    try:
        from seatledger.application.publishers.jetstream import (  # noqa: PLC0415 - extra
            JetStreamPublisher,
        )
    except ImportError as exc:
        raise PublisherUnavailableError(
            f"a nats:// publisher needs the NATS client: {exc}",
            "pip install 'seatledger[nats]'",
        ) from None
    return JetStreamPublisher.from_settings(settings, telemetry)


__all__ = ["LoggingPublisher", "PublisherUnavailableError", "publisher_for"]
