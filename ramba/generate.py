"""Greedy generation on top of prefill/decode."""
from __future__ import annotations

import torch

from ramba.errors import BadInputError


@torch.no_grad()
def generate_greedy(model, ids: torch.Tensor, max_new_tokens: int, state=None, eos_id: int | None = None):
    """ids [B, T] prompt -> (new tokens [B, n] int64, state). The prompt is prefilled with logits="last";
    each new token is the argmax of the previous logits. Stops early when every row produced eos_id."""
    if max_new_tokens < 1:
        raise BadInputError("max_new_tokens must be >= 1")
    if state is None:
        state = model.allocate_state(ids.shape[0], device=ids.device, prompt_length=ids.shape[1])
    logits, state = model.prefill(ids, state, logits="last")
    logits = logits[:, -1]                                                  # [B, V]
    out = []
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    for i in range(max_new_tokens):
        tok = logits.argmax(dim=-1)                                         # [B]
        out.append(tok)
        if eos_id is not None:
            done |= tok == eos_id
            if bool(done.all()):
                break
        if i + 1 < max_new_tokens:
            logits, state = model.decode(tok, state)
    return torch.stack(out, dim=1), state
