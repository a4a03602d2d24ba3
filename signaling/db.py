"""Sync database code, called from async code."""

from channels.db import database_sync_to_async


def db(func):
    """`func` on a worker thread, with stale connections closed around it.

    Not thread-sensitive: each service is a transaction of its own, so calls
    of different sockets run side by side instead of queueing for one thread
    (about twice the call set-ups per second, docs/benchmarks.md). Frames of
    one socket still keep their order: a consumer handles one at a time.
    """
    return database_sync_to_async(func, thread_sensitive=False)
