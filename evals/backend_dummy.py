"""Test backends that need no weights: `dummy` (random but deterministic logits) and `oracle` (an ideal
induction head: it answers by copying what followed the prompt's tail earlier in the context)."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ramba.errors import BadInputError
from ramba.evals.backends import LoglikelihoodMixin


def _load_tokenizer(spec):
    if spec is None or isinstance(spec, str):
        from ramba.tasks.tokenizers import load_tokenizer
        return load_tokenizer(spec or "byte")
    return spec


class DummyBackend(LoglikelihoodMixin):
    """Logits are a pure function of (seed, tokens seen, last token): reproducible across runs and resumes."""
    name = "dummy"

    def __init__(self, model: str | None = None, device: str = "cpu", tokenizer=None, seed: int = 0, **_):
        self.model_id = model or "random"
        self.device = "cpu"
        self.tokenizer = _load_tokenizer(tokenizer)
        self.vocab = int(self.tokenizer.vocab_size)
        self.seed = seed
        self.reset()

    def reset(self, prompt_length: int | None = None) -> None:
        self._n = 0          # tokens consumed so far (int: Python ints never overflow)
        self._last = -1

    def _logits(self) -> torch.Tensor:
        key = hashlib.blake2b(f"{self.seed}:{self._n}:{self._last}".encode(), digest_size=8).digest()
        g = torch.Generator().manual_seed(int.from_bytes(key, "little") & ((1 << 63) - 1))
        return torch.randn(self.vocab, generator=g, dtype=torch.float32)  # [V]

    def consume(self, ids: np.ndarray) -> torch.Tensor:
        if len(ids) == 0:
            raise BadInputError("consume() needs at least one token")
        self._n += len(ids)
        self._last = int(ids[-1])
        return self._logits()

    def step(self, token: int) -> torch.Tensor:
        self._n += 1
        self._last = int(token)
        return self._logits()

    def state_bytes(self) -> int:
        return 16


class OracleBackend(LoglikelihoodMixin):
    """Keeps every consumed id; predicts the token that followed the longest earlier match of the context's
    suffix (latest match on ties). On a needle task whose question ends like the needle's lead-in
    ("... The pass key is"), this copies the needle's value: the scoring path's 100% reference."""
    name = "oracle"
    MAX_MATCH = 256  # longest suffix compared; bounds the cost per prediction

    def __init__(self, model: str | None = None, device: str = "cpu", tokenizer=None, **_):
        self.model_id = model or "induction"
        self.device = "cpu"
        self.tokenizer = _load_tokenizer(tokenizer)
        self.vocab = int(self.tokenizer.vocab_size)
        self.reset()

    def reset(self, prompt_length: int | None = None) -> None:
        self._chunks: list[np.ndarray] = []
        self._ids = np.zeros(0, dtype=np.int32)

    def _all(self) -> np.ndarray:
        if self._chunks:
            self._ids = np.concatenate([self._ids, *self._chunks])
            self._chunks = []
        return self._ids

    def _predict(self) -> int:
        a = self._all()
        n = len(a)
        cand = np.nonzero(a[: n - 1] == a[n - 1])[0]  # positions p < n-1 with a[p] == last token
        if len(cand) == 0:
            return 0
        for l in range(1, min(self.MAX_MATCH, n - 1)):
            ok = cand[cand >= l]
            ok = ok[a[ok - l] == a[n - 1 - l]]
            if len(ok) == 0:
                break
            cand = ok
        return int(a[cand[-1] + 1])

    def _logits(self) -> torch.Tensor:
        logits = torch.full((self.vocab,), -10.0)
        logits[self._predict()] = 10.0
        return logits

    def consume(self, ids: np.ndarray) -> torch.Tensor:
        if len(ids) == 0:
            raise BadInputError("consume() needs at least one token")
        self._chunks.append(np.asarray(ids, dtype=np.int32))
        return self._logits()

    def step(self, token: int) -> torch.Tensor:
        self._chunks.append(np.array([token], dtype=np.int32))
        return self._logits()

    def state_bytes(self) -> int:
        return int(self._all().nbytes)
