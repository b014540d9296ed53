"""Passkey accuracy of a trained model on the evaluation task itself (ramba.tasks.passkey), any length.

Samples come from the task's own generator and seeds (never drawn by training, which uses its own RNG streams).
Prompts are streamed into `model.prefill(..., logits="last")` piece by piece (reset-aligned inference: the upper
stack only runs on the last reset window), then the answer is decoded greedily. One greedy pass gives both
conventions: teacher-forced correct <=> the first len(answer) greedy tokens equal the answer tokens; generated
correct <=> the first digit run of the decoded output equals the key.
"""
from __future__ import annotations

import time
from typing import Iterator, Sequence

import numpy as np
import torch

from ramba.errors import BadInputError


def _autocast(device: torch.device, amp: bool):
    # amp: fp32 weights under bf16 autocast, as in training; the state (chunk memory) is then kept in bf16 too
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def greedy_after_prompt(model, prompts: Iterator[np.ndarray] | Sequence[np.ndarray], batch: int, n_new: int,
                        device: torch.device, hsa_enabled: bool = True, amp: bool = False,
                        prompt_length: int | None = None) -> np.ndarray:
    """Feed prompt pieces (each [batch, t] int) and decode n_new tokens greedily -> [batch, n_new] int64.
    prompt_length (the same for every row) anchors the model's reset grid to the prompt's end."""
    state = model.allocate_state(batch_size=batch, device=device, dtype=torch.bfloat16 if amp else None,
                                 prompt_length=prompt_length)
    logits = None
    with _autocast(device, amp):
        if not hsa_enabled:
            raise BadInputError("greedy_after_prompt: HSA-off runs use full forwards (evaluate_rows_hsa_off)")
        for piece in prompts:
            ids = torch.as_tensor(np.asarray(piece), dtype=torch.int64, device=device)
            if ids.dim() == 1:
                ids = ids[None]
            logits, state = model.prefill(ids, state, logits="last")
        if logits is None:
            raise BadInputError("empty prompt")
        out = []
        tok = logits[:, -1].float().argmax(-1)                                  # [B]
        for i in range(n_new):
            out.append(tok)
            if i + 1 < n_new:
                step_logits, state = model.decode(tok, state)
                tok = step_logits.float().argmax(-1)
    return torch.stack(out, dim=1).cpu().numpy()


def _score(greedy: np.ndarray, sample, tokenizer) -> dict:
    from ramba.tasks.metrics import first_digit_run
    ans = np.asarray(sample.answer_ids)
    tf = bool(np.array_equal(greedy[:len(ans)], ans))
    text = tokenizer.decode([int(t) for t in greedy])
    gen = first_digit_run(text) == sample.meta["key"]
    return {"correct_teacher_forced": tf, "correct_generated": bool(gen), "prediction": text}


def passkey_eval(model, lengths: Sequence[int], depths: Sequence[float], samples: int, seed: int,
                 device: torch.device, batch_size: int = 8, model_name: str = "model",
                 extra_tokens: int = 2, piece_tokens: int = 1 << 20, amp: bool = False) -> list[dict]:
    """Records (one dict per sample) for the passkey task at every (length, depth): `samples` per cell."""
    from ramba.tasks.passkey import PasskeyTask
    from ramba.tasks.tokenizers import ByteTokenizer
    tok = ByteTokenizer()
    task = PasskeyTask()
    model.eval()
    records = []
    for length in lengths:
        todo = list(task.generate([length], list(depths), samples, seed, tok))
        bs = max(1, min(batch_size, (1 << 16) // max(1, length) * 4)) if length <= (1 << 16) else 1
        for i in range(0, len(todo), bs):
            group = todo[i:i + bs]
            n_new = max(len(s.answer_ids) for s in group) + extra_tokens
            t0 = time.perf_counter()
            if len(group) == 1:
                pieces = (p[None] for p in group[0].prompt_chunks(piece_tokens))
            else:
                pieces = [np.stack([np.concatenate(list(s.prompt_chunks(piece_tokens))) for s in group])]
            greedy = greedy_after_prompt(model, pieces, len(group), n_new, device, amp=amp, prompt_length=length)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) / len(group)
            for s, g in zip(group, greedy):
                rec = {"task": s.task, "length": s.length, "depth": s.depth, "seed": s.seed, "index": s.index,
                       "sample_id": s.sample_id, "model": model_name, "backend": "ramba", "answer": s.answer_text,
                       "wall_s": round(wall, 3), **_score(g, s, tok)}
                rec["convention"] = "generated"
                rec["correct"] = rec["correct_generated"]
                records.append(rec)
    return records
