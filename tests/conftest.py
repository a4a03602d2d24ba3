import pytest

from tests.factories import make_consultant


@pytest.fixture
def consultant(db):
    return make_consultant("ada", presence="online")


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
