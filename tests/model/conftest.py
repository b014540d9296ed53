import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """These tests run many tiny ops: one intra-op thread (tests/conftest.py)."""
    yield
