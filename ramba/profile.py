"""Opt-in wall-clock breakdown of prefill/decode by section (mixers, chunk encoder, selection, HSA, transfers).

Off by default: `section(name)` is a shared null context. Inside `with Profile(cuda=...) as p:` every section
adds its time to p.seconds[name]; on CUDA it synchronizes around each section, so the parts add up to the
whole (at the cost of the overlap a normal run has: profile a separate pass, as `ramba-eval bench` does).
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict

_NULL = contextlib.nullcontext()
_active: "Profile | None" = None


class Profile:
    def __init__(self, cuda: bool = False):
        self.cuda = cuda
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def __enter__(self):
        global _active
        self._prev, _active = _active, self
        return self

    def __exit__(self, *exc):
        global _active
        _active = self._prev
        return False

    def _sync(self):
        if self.cuda:
            import torch
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def _section(self, name: str):
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] += time.perf_counter() - t0
            self.calls[name] += 1


def section(name: str):
    """with section("hsa"): ... -- timed when a Profile is active, free otherwise."""
    return _NULL if _active is None else _active._section(name)
