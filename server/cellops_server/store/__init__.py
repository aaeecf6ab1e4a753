"""The store: SQL tables (SQLite or PostgreSQL), content-addressed blobs, ingest and queries."""

from .engine import StoreConfigError, create_engine, migrate, normalize_url
from .pagination import InvalidCursor
from .store import NotebookRef, NotFound, Store

__all__ = [
    "InvalidCursor",
    "NotFound",
    "NotebookRef",
    "Store",
    "StoreConfigError",
    "create_engine",
    "migrate",
    "normalize_url",
]
