"""The one way async code (consumers, the hub, health checks) runs database work."""

import functools

from asgiref.sync import sync_to_async
from django.db import connection


def database_call(func):
    """`func` on a worker thread; its connection goes back to the pool after it.

    Not thread-sensitive: each service is a transaction of its own, so calls
    of different sockets run side by side instead of queueing for one thread
    (docs/benchmarks.md). Frames of one socket still keep their order: a
    consumer handles one at a time. The connection is closed after every call
    (handed back to the pool): channels' `database_sync_to_async` closes only
    connections it finds obsolete, and left some checked out in threads that
    then ended (seen as a pool exhausted after a few dozen event loops in the
    test suite). A call thus always starts without a connection, so nothing
    stale needs closing before it either.
    """

    @functools.wraps(func)
    def closing(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(closing, thread_sensitive=False)
