"""The event store's PostgreSQL factory: the library's own, plus the connection parameters
it has no key for.

``eventsourcing`` 9.5.6 builds its pool from host, port, dbname, user and password only, so
``application_name``, ``sslmode`` and a URL's other libpq parameters (``options``, ...) would
never reach its connections. :meth:`Settings.eventsourcing_env
<seatledger.application.settings.Settings.eventsourcing_env>` names this class as the
``PERSISTENCE_MODULE`` and passes those parameters as one conninfo string under
``POSTGRES_EXTRA_CONNINFO``; they join the pool's connection arguments before it opens.
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict


class PostgresStoreFactory(PostgresFactory):
    POSTGRES_EXTRA_CONNINFO = "POSTGRES_EXTRA_CONNINFO"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        extra = self.env.get(self.POSTGRES_EXTRA_CONNINFO)
        if extra:
            kwargs = self.datastore.pool.kwargs
            # the library passes a dict and opens the pool later, on first use
            assert isinstance(kwargs, dict), kwargs
            kwargs.update(conninfo_to_dict(extra))
