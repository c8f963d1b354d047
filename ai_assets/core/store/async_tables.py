"""LanceDB's async API on this project's own event-loop thread, for the search path.

A query through LanceDB's sync API makes ~6 trips to its event-loop thread (three schema reads
among them), ~1 ms each on these 2 cores, where the same query on an ``AsyncTable`` makes one
(a dense query on a 100-row table: 7.6 ms p50 through the sync API, 3.6 ms through the async
one). The sync ``Table`` exposes its ``AsyncTable`` and loop only privately, so searches open
their own: ``lancedb.connect_async`` on a loop thread started here, the same table by name, and
the same version when the reader pinned one (``pin``, called by ``versions.checkout``). A table
that is not pinned is read with ``read_consistency_interval=0``: every query sees the latest
committed version, as a sync table opened by this process does after its own writes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import Coroutine
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, TypeVar

import lancedb
from lancedb.db import AsyncConnection, DBConnection
from lancedb.table import AsyncTable, Table

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """The loop every search coroutine runs on: one daemon thread, started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="ai-assets-lancedb", daemon=True).start()
            _loop = loop
        return _loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a LanceDB coroutine on the search loop and wait for its result."""
    return start(coroutine).result()


def start(coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """Start a LanceDB coroutine on the search loop without waiting for it."""
    return asyncio.run_coroutine_threadsafe(coroutine, _event_loop())


# Where each sync table came from (database URI and storage options: what `connect_async` needs),
# recorded by `remember_origin` when tables.open_table opens one; the version a reader pinned it
# to; and the AsyncTable opened for it. Weak keys: a table forgotten by its reader frees its entries.
_origins: weakref.WeakKeyDictionary[Table, tuple[str, dict[str, str] | None]] = weakref.WeakKeyDictionary()
_pins: weakref.WeakKeyDictionary[Table, int] = weakref.WeakKeyDictionary()
_async_tables: weakref.WeakKeyDictionary[Table, AsyncTable] = weakref.WeakKeyDictionary()
_connections: dict[tuple[str, str], AsyncConnection] = {}
_lock = threading.Lock()


def remember_origin(table: Table, db: DBConnection) -> Table:
    _origins[table] = (str(db.uri), dict(db.storage_options) if db.storage_options else None)
    return table


def pin(table: Table, version: int) -> None:
    """``table`` now reads ``version`` (after its ``checkout``): its searches read that version too."""
    with _lock:
        _pins[table] = version
        _async_tables.pop(table, None)


def async_table(table: Table) -> AsyncTable:
    """The AsyncTable reading what ``table`` reads: the same table, at the version it was pinned to."""
    with _lock:
        found = _async_tables.get(table)
    if found is not None:
        return found
    opened = run(_open(table))
    with _lock:
        return _async_tables.setdefault(table, opened)


async def _open(table: Table) -> AsyncTable:
    # A table not opened through tables.open_table: its own URI's parent is the database.
    uri, storage_options = _origins.get(table) or (table.uri.rsplit("/", 1)[0], table.initial_storage_options())
    connection = await _connection(uri, storage_options)
    opened = await connection.open_table(table.name)
    pinned = _pins.get(table)
    if pinned is not None:
        await opened.checkout(pinned)
    return opened


async def _connection(uri: str, storage_options: dict[str, str] | None) -> AsyncConnection:
    key = (uri, json.dumps(storage_options or {}, sort_keys=True))
    if key not in _connections:
        _connections[key] = await lancedb.connect_async(
            uri, read_consistency_interval=timedelta(0), storage_options=storage_options
        )
    return _connections[key]
