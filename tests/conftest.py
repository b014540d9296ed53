"""Test setup shared by every test folder.

Triton decides at decoration time whether a kernel runs compiled or interpreted, so TRITON_INTERPRET must be
set before anything imports a module that defines kernels: it is set here, at conftest import, when there is
no CUDA device (CI and laptops). pytest runs from the checkout's root, whose kernels/ folder would shadow the Hub's
`kernels` package that transformers imports: ramba.hub_kernels takes the name for the installed one first.
"""
import os

try:
    import torch
    _HAS_CUDA = torch.cuda.is_available()
except Exception:  # torch missing: let the import error surface in the tests themselves
    _HAS_CUDA = False
if not _HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from ramba.hub_kernels import shield_hub_kernels  # noqa: E402

shield_hub_kernels()


def pytest_collection_modifyitems(config, items):
    if _HAS_CUDA:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _fixed_global_seed():
    """Every test starts from the same global RNG state (torch, numpy, random): a draw a test forgot to seed is
    still the same on every run, so a failure reproduces. Tests that want their own data use a local Generator."""
    import random

    import numpy as np
    import torch
    random.seed(1234)
    np.random.seed(1234)
    torch.manual_seed(1234)


@pytest.fixture
def seed():
    """A fresh seed per test run would hide flakiness; tests use fixed seeds and draw random (never zero) data."""
    import torch
    torch.manual_seed(1234)
    return 1234


@pytest.fixture
def one_thread():
    """Many tiny ops or timing loops on the shared 2-core box: more than one intra-op thread oversubscribes it
    (measured 60x slower under load). Used autouse by tests/model and by the bench tests."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
