"""Database reads that may run in parallel threads.

`database_sync_to_async` runs every call on one thread per process (asgiref's thread-sensitive mode), which is right
for writes and anything that shares a transaction, but makes a whole audience's handshakes wait for each other after
a restart. The reads here run in the event loop's default thread pool instead (Daphne sizes it from ASGI_THREADS);
each thread keeps its own database connection, closed when stale exactly as database_sync_to_async does.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.db import DatabaseSyncToAsync


def pooled_read(func: Callable) -> DatabaseSyncToAsync:
    """Like @database_sync_to_async, for a read that may run beside others."""
    return DatabaseSyncToAsync(func, thread_sensitive=False)
