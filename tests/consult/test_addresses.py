import pytest

from consult.addresses import client_address


@pytest.fixture
def behind_proxy(settings):
    settings.CONSULT_TRUSTED_PROXIES = ["172.30.0.0/24", "10.9.9.9"]


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.CONSULT_TRUSTED_PROXIES = []

    assert client_address("172.30.0.10", "203.0.113.1") == "172.30.0.10"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(
    behind_proxy,
):
    forwarded = "198.51.100.7, 203.0.113.1, 10.9.9.9"

    assert client_address("172.30.0.10", forwarded) == "203.0.113.1"


def test_an_untrusted_peer_cannot_forward_for_anyone(behind_proxy):
    assert client_address("203.0.113.1", "198.51.100.7") == "203.0.113.1"


def test_garbage_hops_are_not_trusted(behind_proxy):
    assert client_address("172.30.0.10", "x, not-an-ip") == "not-an-ip"


def test_a_trusted_peer_without_the_header_is_the_client(behind_proxy):
    assert client_address("172.30.0.10", "") == "172.30.0.10"
