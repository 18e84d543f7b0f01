"""What ``SEATLEDGER_DATABASE_URL`` means: the settings one URL stands for.

* ``postgresql://user:password@host:port/dbname?sslmode=require&options=...`` (or
  ``postgres://``): libpq's URI syntax, parsed by libpq itself, so every libpq parameter works;
* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the path is what follows
  the third slash, as in SQLAlchemy and dj-database-url);
* ``memory://``: nothing persists (tests).

A URL names only some of the connection settings; the others keep their own values.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

#: libpq parameters that have a setting of their own: the URL's value becomes that setting.
POSTGRES_URL_SETTINGS = {
    "host": "postgres_host",
    "port": "postgres_port",
    "dbname": "postgres_dbname",
    "user": "postgres_user",
    "password": "postgres_password",
    "sslmode": "postgres_sslmode",
    "connect_timeout": "postgres_connect_timeout",
    "application_name": "application_name",
}

SCHEMES = "postgresql://, sqlite:/// or memory://"


def url_settings(url: str) -> dict[str, Any]:
    """The settings ``url`` names, by field name; ``ValueError`` says what is wrong with it
    (never quoting the password)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"not a URL: expected {SCHEMES}")
    if scheme == "memory":
        if rest:
            raise ValueError("memory:// takes nothing after the scheme")
        return {"persistence": "memory"}
    if scheme == "sqlite":
        return {"persistence": "sqlite", "sqlite_path": _sqlite_path(rest)}
    if scheme in ("postgresql", "postgres"):
        params = postgres_url_params(url)
        for key in ("port", "connect_timeout"):
            if key in params and not params[key].isdigit():
                raise ValueError(f"its {key} {params[key]!r} is not a whole number")
        named = {
            setting: params[key] for key, setting in POSTGRES_URL_SETTINGS.items() if key in params
        }
        return {"persistence": "postgres", **named}
    raise ValueError(f"unknown scheme {scheme!r}: use {SCHEMES}")


def postgres_url_params(url: str) -> dict[str, str]:
    """Every libpq parameter of a PostgreSQL URL, decoded (libpq refuses unknown ones)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ValueError(f"not a valid PostgreSQL URL: {_reason(url, exc)}") from None
    return {key: str(value) for key, value in params.items() if value is not None}


def _reason(url: str, exc: psycopg.Error) -> str:
    """libpq's complaint, unless it is about the password: libpq quotes the offending text."""
    parts = urlsplit(url)
    if parts.password is None:
        return str(exc).strip()
    host = parts.netloc.rpartition("@")[2]
    without_password = parts._replace(netloc=f"{parts.username or ''}@{host}").geturl()
    try:
        conninfo_to_dict(without_password)
    except psycopg.Error as other:
        return str(other).strip()
    return "the password is not valid percent-encoding"


def postgres_extra_params(url: str | None) -> dict[str, str]:
    """The libpq parameters of a PostgreSQL URL that have no setting of their own
    (``options``, ``sslrootcert``, ``target_session_attrs``, ...)."""
    if not url or not url.lower().startswith(("postgresql://", "postgres://")):
        return {}
    params = postgres_url_params(url)
    return {key: value for key, value in params.items() if key not in POSTGRES_URL_SETTINGS}


def _sqlite_path(rest: str) -> str:
    if not rest.startswith("/"):
        raise ValueError("a sqlite URL has no host: sqlite:///relative.db or sqlite:////abs.db")
    if "?" in rest or "#" in rest:
        raise ValueError("a sqlite URL takes no query or fragment")
    path = rest[1:]
    if not path:
        raise ValueError("sqlite:/// needs a file path: sqlite:///relative.db or sqlite:////abs.db")
    return path
