import subprocess

import pytest
from django.db import connections

from tests.factories import make_consultant
from tests.live import ROOT


def pytest_configure(config):
    """The .mo catalogs are built, not committed: a fresh clone's first run
    builds them (only those older than their .po), so tests read Korean."""
    subprocess.run(["bash", str(ROOT / "scripts" / "i18n.sh"), "compile"], check=True)


@pytest.fixture(scope="session", autouse=True)
def close_database_pools(django_db_setup, django_db_blocker):
    """Give pooled PostgreSQL connections back before the test database is dropped."""
    yield
    with django_db_blocker.unblock():
        for connection in connections.all():
            # Pools are kept per database alias, shared by all threads.
            if connection.alias in getattr(connection, "_connection_pools", {}):
                connection.close_pool()


@pytest.fixture
def consultant(db):
    return make_consultant("ada", presence="online")


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
