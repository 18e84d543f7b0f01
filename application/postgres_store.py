"""The event store's PostgreSQL factory: the library's own, with a pool that fails fast and
recovers fast, and the connection parameters the library has no key for.

``eventsourcing`` 9.5.6 builds its pool from host, port, dbname, user and password only, so
``application_name``, ``sslmode``, ``connect_timeout`` and a URL's other libpq parameters
(``options``, ...) would never reach its connections, and a connection attempt to a server
that does not answer would hang for as long as the kernel lets it. :meth:`Settings.eventsourcing_env
<seatledger.application.settings.Settings.eventsourcing_env>` names this class as the
``PERSISTENCE_MODULE`` and passes those parameters as one conninfo string under
``POSTGRES_EXTRA_CONNINFO``. The library's pool (built, not yet opened) is replaced by a
:class:`~seatledger.projections.pool.StorePool` with the same sizes and timeouts, opened at
once with its minimum of connections ready.
"""

from __future__ import annotations

import copy
from typing import Any

from eventsourcing.postgres import ConnectionPool, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict

from seatledger.projections.pool import StorePool


class PostgresStoreFactory(PostgresFactory):
    POSTGRES_EXTRA_CONNINFO = "POSTGRES_EXTRA_CONNINFO"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        datastore = self.datastore
        library = datastore.pool
        # the library passes a dict and opens the pool later, on first use
        assert isinstance(library.kwargs, dict), library.kwargs
        kwargs: dict[str, Any] = dict(library.kwargs)
        kwargs["connect_timeout"] = max(1, round(library.timeout))
        kwargs.update(conninfo_to_dict(self.env.get(self.POSTGRES_EXTRA_CONNINFO) or ""))
        datastore.pool = store_pool(datastore, library, kwargs)
        library.close()  # never opened: nothing to release but its bookkeeping
        datastore.pool.open_and_wait()


def store_pool(
    datastore: PostgresDatastore,
    template: ConnectionPool[Any],
    kwargs: dict[str, Any],
    *,
    max_size: int | None = None,
) -> StorePool[Any]:
    """A :class:`StorePool` (not yet opened) with ``template``'s sizes and timeouts."""
    size = template.max_size if max_size is None else max_size
    return StorePool(
        get_password_func=template.get_password_func,
        connection_class=template.connection_class,
        kwargs=kwargs,
        min_size=min(template.min_size, size),
        max_size=size,
        open=False,
        configure=datastore.after_connect_func(),
        timeout=template.timeout,
        max_waiting=template.max_waiting,
        max_lifetime=template.max_lifetime,
        name=f"seatledger-events-{datastore.schema}",
    )


def forked_datastore(datastore: PostgresDatastore, application_name: str) -> PostgresDatastore:
    """``datastore`` with a pool of its own (at most two connections), for a forked child
    process: the child must never use, nor close, the connections it inherited (they are the
    parent's sockets), so the inherited datastore is left as it is, untouched."""
    inherited = datastore.pool
    assert isinstance(inherited, ConnectionPool) and isinstance(inherited.kwargs, dict)
    kwargs: dict[str, Any] = {**inherited.kwargs, "application_name": application_name}
    clone = copy.copy(datastore)
    clone.pool = store_pool(clone, inherited, kwargs, max_size=2)
    clone.pool.open_and_wait()
    return clone
