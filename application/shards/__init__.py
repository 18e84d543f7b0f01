"""Restaurants sharded across PostgreSQL databases (issue 14; docs/operations.md, *Shards*).

Each shard is a whole seatledger store (events, read models, runners) of its own; a restaurant
lives on exactly one. :mod:`.map` is the versioned map of which restaurant lives where,
:mod:`.router` the service that routes every command and query by restaurant,
:mod:`.fence` the per-restaurant fence that makes a switch safe, :mod:`.move` moving a
restaurant between shards, :mod:`.cli` the command line's shard parts.
"""
