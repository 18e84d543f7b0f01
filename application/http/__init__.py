"""seatledger over HTTP (install the ``http`` extra): ``create_app(service, keys)``.

Nothing else in seatledger imports this package, so FastAPI and uvicorn are needed only by
``seatledger serve`` and by applications that mount the app themselves.
"""

from seatledger.application.http.app import create_app, openapi_document
from seatledger.application.http.auth import KeyRing, KeysFileError, hash_key, new_key

__all__ = ["KeyRing", "KeysFileError", "create_app", "hash_key", "new_key", "openapi_document"]
