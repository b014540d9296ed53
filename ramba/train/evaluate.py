"""Accuracy of a trained model on the evaluation tasks themselves (passkey, the RULER family), any length.

Samples come from the task's own generator and seeds (never drawn by training, which uses its own RNG streams).
Prompts are streamed into `model.prefill_stream` piece by piece (re-cut on reset boundaries: retrieval and the upper
stack only run on the last reset window), then the answer is decoded greedily. One greedy pass gives both
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
        def tensors():
            for piece in prompts:
                ids = torch.as_tensor(np.asarray(piece), dtype=torch.int64, device=device)
                yield ids[None] if ids.dim() == 1 else ids                      # [B, t]
        # re-cut on reset boundaries: retrieval and the upper stack run once, on the last piece
        logits, state = model.prefill_stream(tensors(), state)
        out = []
        tok = logits[:, -1].float().argmax(-1)                                  # [B]
        for i in range(n_new):
            out.append(tok)
            if i + 1 < n_new:
                step_logits, state = model.decode(tok, state)
                tok = step_logits.float().argmax(-1)
    return torch.stack(out, dim=1).cpu().numpy()


def _batch_for(length: int, batch_size: int, long_batch: int) -> int:
    """Rows per prefill: up to batch_size for short prompts (activation memory ~ rows x length), long_batch
    beyond 64K tokens (the chunk memory of each row then dominates)."""
    if length <= (1 << 16):
        return max(1, min(batch_size, (1 << 16) // max(1, length) * 4))
    return max(1, long_batch)


def _pieces(group, length: int, piece_tokens: int):
    """Prompt pieces [rows, t] for a group of samples of the same length: one array for short prompts, else
    the rows' streamed chunks in lockstep (every sample cuts its prompt at the same offsets)."""
    if len(group) == 1:
        return (p[None] for p in group[0].prompt_chunks(piece_tokens))
    if length <= (1 << 16):
        return [np.stack([np.concatenate(list(s.prompt_chunks(piece_tokens))) for s in group])]
    # at most piece_tokens tokens per prefill call in all (plus, per row, the < mamba_segment tokens that
    # prefill_stream holds back to the next call): kernels index [rows x tokens x width] with int32
    # (rows x 1M tokens crashed with an illegal memory access at 512K x 5 rows on an H200)
    per_row = max(1, piece_tokens // len(group))
    return (np.stack(ps) for ps in zip(*[s.prompt_chunks(per_row) for s in group]))


def passkey_eval(model, lengths: Sequence[int], depths: Sequence[float], samples: int, seed: int,
                 device: torch.device, batch_size: int = 8, model_name: str = "model",
                 extra_tokens: int = 2, piece_tokens: int = 1 << 20, amp: bool = False,
                 long_batch: int = 1) -> list[dict]:
    """Records (one dict per sample) for the passkey task at every (length, depth): `samples` per cell. Two
    tokens are decoded past the key, so a model that runs on after it ("96210" -> "9621099") scores wrong."""
    return task_eval(model, "passkey", lengths, depths, samples, seed, device, batch_size=batch_size,
                     model_name=model_name, piece_tokens=piece_tokens, amp=amp, long_batch=long_batch,
                     extra_tokens=extra_tokens)


def task_eval(model, task_name, lengths: Sequence[int], depths: Sequence[float], samples: int, seed: int,
              device: torch.device, batch_size: int = 8, model_name: str = "model", piece_tokens: int = 1 << 20,
              amp: bool = False, long_batch: int = 1, extra_tokens: int = 0, gen_tokens: str = "answer") -> list[dict]:
    """Records for any registered task, scored by the task's own scorer in both conventions (one greedy pass of
    len(answer) + extra_tokens tokens: generated scores the decoded text; teacher-forced correct <=> the first
    len(answer) greedy tokens equal the answer ids). Samples of one length are batched (same exact length).
    task_name: a registered task's name, or a task object (a probe's own variant). gen_tokens "task" decodes the
    task's own generation budget instead (meta max_new_tokens: RULER's tokens_to_generate, 128 for NIAH), so a
    model that writes a few words before the value is scored as upstream RULER scores it (substring match)."""
    if gen_tokens not in ("answer", "task"):
        raise ValueError(f"gen_tokens must be 'answer' or 'task', got {gen_tokens!r}")
    from ramba.evals.scoring import task_budget
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    tok = ByteTokenizer()
    task = get_task(task_name) if isinstance(task_name, str) else task_name
    model.eval()
    records = []
    for length in lengths:
        todo = list(task.generate([length], list(depths), samples, seed, tok))
        bs = _batch_for(length, batch_size, long_batch)
        for i in range(0, len(todo), bs):
            group = todo[i:i + bs]
            budget = [len(s.answer_ids) + extra_tokens if gen_tokens == "answer" else task_budget(s) for s in group]
            n_new = max(budget)
            t0 = time.perf_counter()
            pieces = _pieces(group, length, piece_tokens)
            greedy = greedy_after_prompt(model, pieces, len(group), n_new, device, amp=amp, prompt_length=length)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) / len(group)
            for s, g, b in zip(group, greedy, budget):
                g = [int(t) for t in g[:b]]
                text = tok.decode(g)
                gen = task.score(s, text, "generated")
                tf = task.score(s, g[:len(s.answer_ids)], "teacher_forced")
                records.append({"task": s.task, "length": s.length, "depth": s.depth, "seed": s.seed,
                                "index": s.index, "sample_id": s.sample_id, "model": model_name, "backend": "ramba",
                                "answer": s.answer_text, "prediction": text, "wall_s": round(wall, 3),
                                "convention": "generated", "correct": bool(gen["correct"]),
                                "correct_generated": bool(gen["correct"]),
                                "score": float(gen.get("score", gen["correct"])),
                                "correct_teacher_forced": bool(tf["correct"]), "gen_tokens": b})
    return records
