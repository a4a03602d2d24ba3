import pytest
from django.test import Client

from tests.factories import accept, join

# The sockets of the call in `call`, as the services know them.
DESK, CALLER = "desk-1", "caller-1"


@pytest.fixture
def call(consultant) -> int:
    """An active consultation of `consultant` (its id), between DESK and CALLER."""
    join(consultant, CALLER)
    return accept(consultant, DESK).value["consultation"]


@pytest.fixture
def desk_client(consultant) -> Client:
    """A test client logged in as `consultant`."""
    client = Client()
    client.force_login(consultant.user)
    return client
