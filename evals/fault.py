"""Fault injection, to prove that a regression gate fails when a backend gets worse.

`RAMBA_EVAL_FAULT=corrupt_logits:P` wraps whatever backend a run loads: for a fraction P of the samples (picked
by a hash of the prompt's first segment, so the same samples on every run and resume) the logits are rolled by one
id, so their argmax is always wrong. The run's meta.json records the fault and reports show it; a folder run with
one fault setting is never resumed with another.

`RAMBA_EVAL_KILL=R:N` kills rank R (0 outside torchrun) by SIGKILL right after it has written the records of
its N-th sample of the session, to prove that a dead rank loses only its unfinished samples and that a rerun
resumes. It changes no result, so meta.json does not record it and a resume may drop it.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from ramba.errors import BadInputError

ENV_VAR = "RAMBA_EVAL_FAULT"
KILL_VAR = "RAMBA_EVAL_KILL"


def active() -> str | None:
    spec = os.environ.get(ENV_VAR, "").strip()
    if not spec:
        return None
    parse(spec)
    return spec


def parse(spec: str) -> float:
    kind, _, p = spec.partition(":")
    try:
        prob = float(p)
    except ValueError:
        prob = -1.0
    if kind != "corrupt_logits" or not 0.0 <= prob <= 1.0:
        raise BadInputError(f"{ENV_VAR}={spec!r} is not a fault; write corrupt_logits:P with P in [0, 1], or unset it")
    return prob


class CorruptLogits:
    """Delegates to `inner`; on the picked samples every logits vector it returns is rolled by one id."""

    def __init__(self, inner, prob: float):
        self._inner, self._prob = inner, prob
        self._bad = False
        self._fresh = True

    def __getattr__(self, name):  # name, model_id, tokenizer, device, segment, model, meta...
        return getattr(self._inner, name)

    def reset(self, prompt_length: int | None = None) -> None:
        self._inner.reset(prompt_length=prompt_length)   # every backend takes it (RAMba's end-anchored grid)
        self._fresh = True

    def _out(self, logits):
        return logits.roll(1) if self._bad else logits

    def _identify(self, ids) -> None:
        if self._fresh:  # the first segment after reset() identifies the sample
            head = np.ascontiguousarray(ids, dtype=np.int64).tobytes()
            u = int.from_bytes(hashlib.blake2b(head, digest_size=8).digest(), "little") / 2**64
            self._bad, self._fresh = u < self._prob, False

    def consume(self, ids):
        self._identify(ids)
        return self._out(self._inner.consume(ids))

    def consume_more(self, ids) -> None:
        self._identify(ids)
        more = getattr(self._inner, "consume_more", None)
        if more is not None:
            more(ids)
        else:
            self._inner.consume(ids)

    def step(self, token: int):
        return self._out(self._inner.step(token))

    def state_bytes(self) -> int:
        return self._inner.state_bytes()

    def loglikelihood(self, context, continuation):
        return self._inner.loglikelihood(context, continuation)


def wrap(backend, spec: str | None):
    return backend if not spec else CorruptLogits(backend, parse(spec))


def kill_after() -> tuple[int, int] | None:
    """(rank, samples) from RAMBA_EVAL_KILL=R:N, or None when unset."""
    spec = os.environ.get(KILL_VAR, "").strip()
    if not spec:
        return None
    r, _, n = spec.partition(":")
    if not (r.isdigit() and n.isdigit() and int(n) >= 1):
        raise BadInputError(f"{KILL_VAR}={spec!r} is not R:N (kill rank R after N samples); unset it")
    return int(r), int(n)


def maybe_kill(rank: int, samples_written: int) -> None:
    target = kill_after()
    if target is not None and target == (rank, samples_written):
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
