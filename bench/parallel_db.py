"""An experiment: `consult.asgi` with its database calls on a thread pool.

channels' `database_sync_to_async` is thread-sensitive: every service and
selector call of a process runs on one and the same thread, so the process
waits for PostgreSQL one round trip at a time. This module serves the same
application with those calls on the event loop's default thread pool instead,
to measure that change before anyone makes it (`--app bench.parallel_db:application`).
"""

from channels.db import DatabaseSyncToAsync

from consult.asgi import application  # noqa: F401 (what the server serves)
from signaling import consumers, hub, runtime


def parallel(func):
    return DatabaseSyncToAsync(func, thread_sensitive=False)


for module in (consumers, hub, runtime):
    module.database_sync_to_async = parallel
