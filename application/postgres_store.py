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

from typing import Any

from eventsourcing.postgres import PostgresFactory
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
        datastore.pool = StorePool(
            get_password_func=library.get_password_func,
            connection_class=library.connection_class,
            kwargs=kwargs,
            min_size=library.min_size,
            max_size=library.max_size,
            open=False,
            configure=datastore.after_connect_func(),
            timeout=library.timeout,
            max_waiting=library.max_waiting,
            max_lifetime=library.max_lifetime,
            name=f"seatledger-events-{datastore.schema}",
        )
        library.close()  # never opened: nothing to release but its bookkeeping
        datastore.pool.open_and_wait()
