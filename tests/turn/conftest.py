from tests.signaling.conftest import fresh_runtime  # noqa: F401
