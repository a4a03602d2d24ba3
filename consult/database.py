"""The one way async code (consumers, the hub, health checks) runs database work."""

import contextlib
import functools
import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

# What a failover, a restart or a busy SQLite file raises: a terminated or
# broken connection, "database is locked", a serialization failure (psycopg
# raises those as OperationalError subclasses, and Django keeps the class).
TRANSIENT = (OperationalError, InterfaceError)


class DatabaseUnavailable(Exception):
    """The database failed twice in a row, on two connections: try again later."""


def database_call(func):
    """`func` on a worker thread; its connection goes back to the pool after it.

    A transient database error (see `TRANSIENT`) is retried once on a fresh
    connection; if that fails too, `DatabaseUnavailable` is raised. A retry is
    safe because each service is one transaction, rolled back by the failure.

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
            try:
                return func(*args, **kwargs)
            except TRANSIENT as error:
                log.warning("%s failed, retrying once: %r", func.__name__, error)
                _hand_back()
            try:
                return func(*args, **kwargs)
            except TRANSIENT as error:
                raise DatabaseUnavailable(str(error)) from error
        finally:
            _hand_back()

    return sync_to_async(closing, thread_sensitive=False)


def _hand_back() -> None:
    # Closing a connection that the server already cut may fail in turn; the
    # pool throws such a connection away.
    with contextlib.suppress(DatabaseError):
        connection.close()
