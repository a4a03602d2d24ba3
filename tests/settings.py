"""The production settings, with the environment a test run needs.

Tests talk plain HTTP to the test client, so the HTTPS redirect is off; all
else (secure cookies, HSTS, origin checks) stays as in production.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from config.settings import *  # noqa: F403

# Tests of the services read the history of tickets cancelled at once; the
# quick-cancel rule (no history row) is tested with the setting put back.
CONSULT_QUICK_CANCEL_SECONDS = 0

# One test process runs hundreds of event loops and their worker threads, and
# the fault tests cut every connection at once: a roomier pool than a server's
# keeps a few connections stranded in finished threads from starving the rest.
if "pool" in DATABASES["default"].get("OPTIONS", {}):  # noqa: F405
    DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = 40  # noqa: F405

# Admission control answers joins `try_later` when the event loop lags, which
# on a loaded test machine it may do at any moment: off for the suite, and
# turned on by its own tests (tests/signaling/test_admission.py).
CONSULT_ADMISSION_LAG_MS = 0
