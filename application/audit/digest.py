"""Digests: a chained digest of the log (tamper evidence) and a digest of a read model's rows.

Each event's digest covers its aggregate id, its version, its topic and its stored bytes;
the chain's digest at an event covers that event's digest and the chain's digest before it,
so the head covers every event and their order. Notification ids are not covered (they are
where an event sits, not what it says): the same events copied into another store, with
other ids, chain to the same head. A checkpoint file records the head and, per event, its
position, aggregate, version and a short digest, so a later run can say which event was
edited, deleted, inserted or moved.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from seatledger.application.audit.report import CheckpointReport, TamperFinding
from seatledger.domain.values import canonical_json

CHECKPOINT_FORMAT = "seatledger-log-checkpoint"
CHECKPOINT_VERSION = 1
_GENESIS = hashlib.sha256(b"seatledger-log-chain/1").digest()
#: Hex digits of each event's digest kept in a checkpoint: enough to say which event changed
#: (the chained head, in full, is what proves the log unchanged).
SHORT = 16
_sha256 = hashlib.sha256


def event_digest(originator_id: UUID | str, version: int, topic: str, state: bytes) -> bytes:
    """The digest of one stored event: length-prefixed fields, so no two events collide."""
    oid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
    return hashlib.sha256(
        b"".join(
            (
                oid.bytes,
                version.to_bytes(8, "big"),
                _topic_field(topic),
                len(state).to_bytes(8, "big"),
                state,
            )
        )
    ).digest()


@functools.lru_cache(maxsize=256)
def _topic_field(topic: str) -> bytes:
    """A topic's length-prefixed bytes (a log has a few dozen topics: encoded once each)."""
    encoded = topic.encode()
    return len(encoded).to_bytes(4, "big") + encoded


@dataclass(frozen=True)
class DigestedNotification(Notification):
    """A notification read with its event digest (:func:`event_digest` of its fields),
    computed by PostgreSQL in the query that read it (:data:`POSTGRES_EVENT_DIGEST`)."""

    digest: bytes = b""


#: :func:`event_digest` in PostgreSQL's SQL, over an event table row (uuid aggregate ids):
#: the same length-prefixed fields, hashed by the server next to the bytes it stores
#: rather than by Python after they crossed the wire (functions named in ``pg_catalog``, so
#: no function of the store's own schemas can stand in for them). The cross-backend tests
#: prove it equal: the same log has the same head on memory, SQLite and PostgreSQL.
POSTGRES_EVENT_DIGEST = (
    "pg_catalog.sha256("
    "pg_catalog.uuid_send(originator_id)"
    " || pg_catalog.int8send(originator_version)"
    " || pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(topic, 'UTF8')))"
    " || pg_catalog.convert_to(topic, 'UTF8')"
    " || pg_catalog.int8send(pg_catalog.octet_length(state))"
    " || state)"
)


@dataclass
class LogChain:
    """The chained digest, built one notification at a time; remembers every event's
    position, key and digest (for checkpoints and for locating a change)."""

    head_bytes: bytes = _GENESIS
    positions: list[int] = field(default_factory=list)
    #: (aggregate id, version) per event; an id as its 128-bit integer (``UUID(int=...)``
    #: when written out): cheaper to keep, and to send from a worker process, than a UUID
    originators: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)

    def add(self, notification: Notification) -> None:
        """One event onto the chain: its digest as read (:class:`DigestedNotification`), or
        :func:`event_digest`'s bytes, inlined (it runs once per event of the log: no
        per-event call, property or list of parts beyond the hash's)."""
        oid = notification.originator_id
        number = oid.int if isinstance(oid, UUID) else UUID(oid).int
        version = notification.originator_version
        if type(notification) is DigestedNotification:
            one = notification.digest
        else:
            state = notification.state
            if not isinstance(state, bytes):
                state = bytes(state)
            one = _sha256(
                number.to_bytes(16, "big")
                + version.to_bytes(8, "big")
                + _topic_field(notification.topic)
                + len(state).to_bytes(8, "big")
                + state
            ).digest()
        self.head_bytes = _sha256(self.head_bytes + one).digest()
        self.positions.append(notification.id)
        self.originators.append(number)
        self.versions.append(version)
        self.digests.append(one)

    @classmethod
    def merged(cls, chains: Sequence[LogChain], *, below: int) -> LogChain:
        """One chain over the events of several chains (disjoint shares of one log), in log
        position order, up to (not including) position ``below``."""
        merged = cls()
        for chain in chains:
            merged.positions += chain.positions
            merged.originators += chain.originators
            merged.versions += chain.versions
            merged.digests += chain.digests
        order = sorted(range(len(merged.positions)), key=merged.positions.__getitem__)
        order = [i for i in order if merged.positions[i] < below]
        merged.positions = [merged.positions[i] for i in order]
        merged.originators = [merged.originators[i] for i in order]
        merged.versions = [merged.versions[i] for i in order]
        merged.digests = [merged.digests[i] for i in order]
        head = merged.head_bytes
        for one in merged.digests:
            head = _sha256(head + one).digest()
        merged.head_bytes = head
        return merged

    @property
    def keys(self) -> list[tuple[str, int]]:
        return [(str(UUID(int=o)), v) for o, v in zip(self.originators, self.versions, strict=True)]

    @property
    def head(self) -> str:
        return self.head_bytes.hex()

    @property
    def events(self) -> int:
        return len(self.positions)

    @property
    def last_position(self) -> int:
        return self.positions[-1] if self.positions else 0

    def head_at(self, position: int) -> tuple[int, str]:
        """Events and chained digest of the log up to ``position`` (inclusive)."""
        head = _GENESIS
        count = 0
        for at, one in zip(self.positions, self.digests, strict=True):
            if at > position:
                break
            head = hashlib.sha256(head + one).digest()
            count += 1
        return count, head.hex()

    # --- checkpoints ---

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "events": self.events,
            "last_position": self.last_position,
            "head": self.head,
            "entries": [
                [position, key[0], key[1], one.hex()[:SHORT]]
                for position, key, one in zip(self.positions, self.keys, self.digests, strict=True)
            ],
        }

    def write_checkpoint(self, path: Path) -> CheckpointReport:
        text = json.dumps(self.checkpoint(), separators=(",", ":"))
        path.write_text(text + "\n", encoding="utf-8")
        return CheckpointReport(
            path=str(path),
            action="written",
            ok=True,
            events=self.events,
            last_position=self.last_position,
            head=self.head,
        )

    def verify_checkpoint(
        self, path: Path, *, limit: int = 20, replayed_to: int | None = None
    ) -> CheckpointReport:
        """Compare the log with a checkpoint: the chained digest over the span the checkpoint
        covers must be the same; if not, say which events were edited, deleted, inserted or
        reordered (events after the checkpoint's last position are new, not findings).
        ``replayed_to``: the replay was bounded there, and must cover the checkpoint's span."""
        recorded = read_checkpoint(path)
        last = int(recorded["last_position"])
        if replayed_to is not None and replayed_to < last:
            raise CheckpointError(
                f"the audit stopped at position {replayed_to}, before the end of the span "
                f"{path} covers (position {last}): verify it without --until"
            )
        count, head = self.head_at(last)
        findings = [] if head == recorded["head"] else locate(recorded["entries"], self, last)
        return CheckpointReport(
            path=str(path),
            action="verified",
            ok=head == recorded["head"] and count == int(recorded["events"]),
            events=int(recorded["events"]),
            last_position=last,
            head=str(recorded["head"]),
            current_head=head,
            findings=findings[:limit],
        )


class CheckpointError(ValueError):
    """The file is not a checkpoint this version can read."""


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if (
        not isinstance(recorded, dict)
        or recorded.get("format") != CHECKPOINT_FORMAT
        or recorded.get("version") != CHECKPOINT_VERSION
    ):
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} version {CHECKPOINT_VERSION}")
    return recorded


def locate(entries: Sequence[Sequence[Any]], chain: LogChain, last: int) -> list[TamperFinding]:
    """Which recorded events changed, in position order: ``deleted`` (gone), ``edited``
    (same aggregate and version, other bytes), ``reordered`` (the fewest events whose move
    explains the new order: those off the longest run of events still in recorded order),
    ``inserted`` (an event the checkpoint does not know, before its last recorded event)."""
    current: dict[tuple[str, int], tuple[int, str]] = {
        key: (position, one.hex()[:SHORT])
        for position, key, one in zip(chain.positions, chain.keys, chain.digests, strict=True)
    }
    findings: list[TamperFinding] = []
    kept: list[tuple[int, tuple[str, int], int]] = []  # (recorded position, key, now at)
    recorded_keys: set[tuple[str, int]] = set()
    for position, originator_id, version, short in entries:
        key = (str(originator_id), int(version))
        recorded_keys.add(key)
        now = current.get(key)
        if now is None:
            findings.append(_finding("deleted", position, key, None, "no longer in the log"))
            continue
        if now[1] != short:
            findings.append(_finding("edited", position, key, None, "its stored bytes changed"))
        kept.append((int(position), key, now[0]))
    in_order = _in_order(kept)
    for i, (position, key, now_at) in enumerate(kept):
        if i not in in_order:
            findings.append(
                _finding("reordered", position, key, now_at, f"now at position {now_at}")
            )
    span = max((now_at for _, _, now_at in kept), default=last)
    for key, (position, _) in current.items():
        if key not in recorded_keys and position < span:
            findings.append(_finding("inserted", position, key, None, "not in the checkpoint"))
    return sorted(findings, key=lambda f: (f.position, f.kind))


def _in_order(kept: Sequence[tuple[int, tuple[str, int], int]]) -> set[int]:
    """The indexes of a longest run of ``kept`` (recorded position, key, now at) whose
    current positions still increase; among the longest, the one keeping the most events at
    their recorded positions (so swapping two events flags those two, not a bystander).
    O(n log n): a Fenwick tree of the best run ending below each current position."""
    ranks = {now_at: rank for rank, now_at in enumerate(sorted({k[2] for k in kept}), 1)}
    size = len(ranks)
    tree: list[tuple[int, int, int]] = [(0, 0, -1)] * (size + 1)  # (length, unmoved, index)
    previous: list[int] = []
    best: tuple[int, int, int] = (0, 0, -1)
    for index, (position, _, now_at) in enumerate(kept):
        rank = ranks[now_at]
        below, at = (0, 0, -1), rank - 1
        while at > 0:
            below = max(below, tree[at])
            at -= at & -at
        run = (below[0] + 1, below[1] + (position == now_at), index)
        previous.append(below[2])
        best = max(best, run)
        at = rank
        while at <= size:
            tree[at] = max(tree[at], run)
            at += at & -at
    chosen: set[int] = set()
    at_index = best[2]
    while at_index >= 0:
        chosen.add(at_index)
        at_index = previous[at_index]
    return chosen


def _finding(
    kind: Any, position: int, key: tuple[str, int], now_at: int | None, what: str
) -> TamperFinding:
    return TamperFinding(
        kind=kind,
        position=int(position),
        originator_id=key[0],
        originator_version=key[1],
        now_at=now_at,
        message=f"event {key[0]} v{key[1]} at position {position}: {what}",
    )


def rows_digest(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 over the rows' canonical JSON, one line per row, in the given order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical_json(list(row)).encode())
        digest.update(b"\n")
    return digest.hexdigest()
