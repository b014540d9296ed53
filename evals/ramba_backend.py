"""`ramba` backend: a RAMba checkpoint folder or preset, fed through RambaModel.prefill/decode.

consume() prefills in pieces of about `segment` tokens (activation memory stays bounded on long prompts), re-cut
on Mamba reset boundaries (model.prefill_stream): every call but the last runs with logits="none" and so only
the lower stack and the chunk encoder; the last runs with logits="last" (the upper stack from its last boundary).
consume_more(ids) feeds prompt tokens that more will follow (backends.feed_prompt uses it): the same, with the
tokens after the last boundary held back for the next call, so a prompt fed chunk by chunk runs retrieval once.

Memory (issue 10): `dtype` is the model's compute dtype (default: the checkpoint's), `memory_dtype` the chunk
memory's (default: dtype), `memory` its placement: gpu | host | disk | auto (ramba/offload.py,
ramba/budget.py). check_fits(length) decides and fails before a run writes anything; close() frees the
memory (the disk tier's file is already unlinked unless keep_memory).
"""
from __future__ import annotations

import itertools
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
                 ops: str | None = None, segment: int = 1 << 16, memory: str = "auto",
                 memory_dtype: str | None = None, memory_dir: str | None = None, keep_memory: bool = False,
                 landmarks_max_bytes: int | None = None, **_):
        if not model:
            raise BadInputError("the ramba backend needs a checkpoint folder or preset: --model ramba:PATH_OR_PRESET")
        import torch
        from ramba.model import RambaModel
        from ramba.budget import CHOICES, canonical_dtype
        dtype, memory_dtype = canonical_dtype(dtype), canonical_dtype(memory_dtype)
        if memory not in CHOICES:
            raise BadInputError(f"unknown memory placement {memory!r}; use {', '.join(CHOICES)}")
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
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        self.memory_dtype = memory_dtype or self.dtype
        self.requested_memory = memory
        self.memory_dir, self.keep_memory = memory_dir, bool(keep_memory)
        self.landmarks_max_bytes = landmarks_max_bytes
        self.placement: str | None = None     # decided by check_fits (or per prompt at reset)
        self.memory_line: str | None = None
        self.state = None                     # allocated by reset() (or the first consume): nothing written yet
        self._pending = None                  # prompt tokens held back by consume_more (after its last boundary)

    # ---------------------------------------------------------------- memory placement
    def _choose(self, length: int):
        from ramba import budget
        import torch
        item = torch.empty((), dtype=getattr(torch, self.memory_dtype)).element_size()
        act = torch.empty((), dtype=getattr(torch, self.dtype)).element_size()
        free = budget.free_bytes(self.device, self.memory_dir)
        if self.state is not None and self.state.memory is not None and self.device.startswith("cuda"):
            free["gpu"] += self.state.memory.device_nbytes()      # the current state is freed before the next
        return budget.choose(self.model.cfg, length, self.requested_memory, free, itemsize=item,
                             segment=self.segment, act_itemsize=act, landmarks_max_bytes=self.landmarks_max_bytes,
                             device_is_host=not self.device.startswith("cuda"))

    def check_fits(self, max_length: int) -> str:
        """Decide the placement for prompts up to max_length (raises DoesNotFitError when none fits) and
        return the line saying what was chosen and why."""
        if not self.model.cfg.has_hsa:
            self.placement, self.memory_line = "gpu", "memory: gpu (no chunk memory)"
            return self.memory_line
        self.placement, _, self.memory_line = self._choose(int(max_length))
        return self.memory_line

    def meta(self) -> dict:
        from ramba.offload import host_block_mode
        out = {"dtype": self.dtype, "memory_dtype": self.memory_dtype, "memory": self.placement,
               "memory_requested": self.requested_memory, "memory_line": self.memory_line}
        if self.placement == "host":
            out["host_blocks"] = host_block_mode()      # pinned or pageable (RAMBA_HOST_PINNED)
        return out

    def close(self) -> None:
        self._pending = None
        try:
            if self.state is not None and self.state.memory is not None:
                self.state.memory.close()
        finally:
            self.state = None

    def reset(self, prompt_length: int | None = None) -> None:
        """A new empty state; with the prompt's length known, the last Mamba reset falls cfg.reset_tail tokens
        before its end whatever the length (docs/contracts.md, reset-aligned inference)."""
        import torch
        self.close()                          # the previous prompt's memory (and its file) goes first
        placement = self.placement
        if placement is None:                 # no check_fits: decide for this prompt (gpu before any prompt)
            placement = self._choose(prompt_length)[0] if prompt_length and self.model.cfg.has_hsa else "gpu"
            if self.requested_memory != "auto" and self.model.cfg.has_hsa:
                placement = self.requested_memory
        opts = {}
        if placement == "disk":
            opts = dict(memory_dir=self.memory_dir, keep_file=self.keep_memory)
        if placement != "gpu" and self.landmarks_max_bytes is not None:
            opts["landmarks_max_bytes"] = int(self.landmarks_max_bytes)
        self.state = self.model.allocate_state(batch_size=1, device=self.device, prompt_length=prompt_length,
                                               memory=placement, memory_dtype=getattr(torch, self.memory_dtype),
                                               **opts)

    def _pieces(self, ids: np.ndarray):
        """The held-back tokens, then ids in pieces of `segment` tokens, as [1, t] tensors on the device (checks
        and the state's allocation happen now, the pieces are made as they are fed)."""
        import torch
        ids = np.asarray(ids)
        if ids.ndim != 1 or len(ids) == 0:
            raise BadInputError("consume() needs a non-empty 1-D array of token ids")
        if self.state is None:
            self.reset()
        pending, self._pending = self._pending, None
        head = [] if pending is None else [pending]
        return itertools.chain(head, (torch.as_tensor(ids[s:s + self.segment].astype(np.int64), device=self.device)[None]
                                      for s in range(0, len(ids), self.segment)))                       # [1, t]

    def consume_more(self, ids: np.ndarray) -> None:
        """Prompt tokens that more will follow: fed up to the last reset boundary with no logits (the lower stack
        and chunk encoder only), the rest held back for the next call."""
        self._pending = self.model.feed_to_boundary(self._pieces(ids), self.state)

    def consume(self, ids: np.ndarray):
        """The prompt's last tokens (after any consume_more) -> the logits of the last one [V]. Pieces of
        `segment` tokens, re-cut on reset boundaries: only the last call runs retrieval and the upper stack."""
        logits, self.state = self.model.prefill_stream(self._pieces(ids), self.state)
        return logits[0, -1].float()                                        # [V]

    def step(self, token: int):
        import torch
        if self._pending is not None:
            raise BadInputError("step() after consume_more(): end the prompt with consume() first")
        x = torch.tensor([int(token)], dtype=torch.int64, device=self.device)
        if self.state is None:
            self.reset()
        logits, self.state = self.model.decode(x, self.state)
        return logits[0].float()

    def state_bytes(self) -> int:
        return 0 if self.state is None else self.state.nbytes()
