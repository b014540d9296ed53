"""`ramba` backend: a RAMba checkpoint folder or preset, fed through RambaModel.prefill/decode.

consume() prefills with logits="last" (with mamba_segment set, the upper stack only runs after the last reset
boundary), in sub-segments of at most `segment` tokens so activation memory stays bounded on long prompts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ramba.errors import BadInputError
from ramba.evals.backends import LoglikelihoodMixin

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _default_tokenizer(model: str, vocab_size: int):
    from ramba.tasks.tokenizers import load_tokenizer
    if vocab_size == 256:
        return load_tokenizer("byte")
    p = Path(model).expanduser()
    if p.is_dir() and any((p / f).exists() for f in _TOKENIZER_FILES):
        return load_tokenizer(str(p))
    raise BadInputError(f"model {model!r} has a {vocab_size}-token vocabulary and no tokenizer files; "
                        "pass --tokenizer PATH to its tokenizer directory")


class RambaBackend(LoglikelihoodMixin):
    name = "ramba"

    def __init__(self, model: str | None, device: str = "cpu", tokenizer=None, dtype: str | None = None,
                 ops: str | None = None, segment: int = 1 << 16, **_):
        if not model:
            raise BadInputError("the ramba backend needs a checkpoint folder or preset: --model ramba:PATH_OR_PRESET")
        import torch
        from ramba.model import RambaModel
        if dtype is not None and not isinstance(getattr(torch, str(dtype), None), torch.dtype):
            raise BadInputError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        if int(segment) < 1:
            raise BadInputError("segment must be a positive number of tokens")
        self.model_id = str(model)
        self.device = device
        self.segment = int(segment)
        self.model = RambaModel.from_pretrained(model, device=device,
                                                dtype=getattr(torch, dtype) if dtype else None)
        if ops is not None:
            self.model.ops_backend = ops
        if tokenizer is None or isinstance(tokenizer, str):
            from ramba.tasks.tokenizers import load_tokenizer
            tokenizer = load_tokenizer(tokenizer) if tokenizer else _default_tokenizer(model, self.model.cfg.vocab_size)
        if tokenizer.vocab_size > self.model.cfg.vocab_size:
            raise BadInputError(f"tokenizer {tokenizer.name} has {tokenizer.vocab_size} ids but the model only "
                                f"{self.model.cfg.vocab_size}; pass the model's own --tokenizer")
        self.tokenizer = tokenizer
        self.reset()

    def reset(self, prompt_length: int | None = None) -> None:
        """A new empty state; with the prompt's length known, the last Mamba reset falls cfg.reset_tail tokens
        before its end whatever the length (docs/contracts.md, reset-aligned inference)."""
        self.state = self.model.allocate_state(batch_size=1, device=self.device, prompt_length=prompt_length)

    def consume(self, ids: np.ndarray):
        import torch
        ids = np.asarray(ids)
        if ids.ndim != 1 or len(ids) == 0:
            raise BadInputError("consume() needs a non-empty 1-D array of token ids")
        logits = None
        for s in range(0, len(ids), self.segment):
            x = torch.as_tensor(ids[s:s + self.segment].astype(np.int64), device=self.device)[None]  # [1, T']
            logits, self.state = self.model.prefill(x, self.state, logits="last")
        return logits[0, -1].float()                                        # [V]

    def step(self, token: int):
        import torch
        x = torch.tensor([int(token)], dtype=torch.int64, device=self.device)
        logits, self.state = self.model.decode(x, self.state)
        return logits[0].float()

    def state_bytes(self) -> int:
        return self.state.nbytes()
