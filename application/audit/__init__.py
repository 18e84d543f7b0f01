"""Replay-driven audits and time travel over the event log.

* :class:`Audit` (:mod:`.auditor`) replays the log into scratch read models, compares them
  with the live ones row by row, checks the history invariants at every event
  (:mod:`.invariants`) and chains a tamper-evident digest of the log (:mod:`.digest`);
* :mod:`.timetravel` answers the floor at an instant or position, a booking's timeline and
  the difference between two instants;
* :mod:`.rebuild` rebuilds the live read models beside them and swaps them in, keeping every
  outbox message's delivery state.

The answers are the pydantic models of :mod:`.report`.
"""

from seatledger.application.audit.auditor import Audit
from seatledger.application.audit.replay import Until

__all__ = ["Audit", "Until"]
