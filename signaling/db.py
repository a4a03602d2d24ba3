"""Sync database code, called from async code."""

from channels.db import database_sync_to_async


def db(func):
    """`func` on the database thread, with stale connections closed around it.

    Thread-sensitive, so every call of a process queues on one thread: frames
    of one socket keep their order. Running calls side by side measured about
    twice the call set-ups per second, but stalled frames under the property
    tests on PostgreSQL; see docs/benchmarks.md.
    """
    return database_sync_to_async(func)
