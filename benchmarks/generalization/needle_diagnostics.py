"""Where multi-needle retrieval fails: selection (the queried needle's chunk is not among the top-k) or
discrimination (it is selected, but the answer is copied from another needle or garbled). CPU, fp32.

    python benchmarks/generalization/needle_diagnostics.py checkpoints/ramba-tiny --length 4096 --samples 20 \
        --out benchmarks/records/generalization/cpu/needle-diagnostics-ramba-tiny.json

Per sample (one forward over prompt + reference answer with the evaluation's reset grid for the selection, and
the greedy answer decoded through the state), at the first answer position: is a chunk of the (first) queried key's needles selected, its fusion weight (summed over the slots that hold it),
the weight on the other needles' chunks, and whether the greedy first value equals the reference, another
needle's value, or neither. Task seed 101 and depths spread over (0, 1), as benchmarks/generalization/ruler_gpu.py.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

TASKS = ("niah_single_2", "niah_multikey_1", "niah_multikey_2", "niah_multikey_3", "niah_multivalue",
         "niah_multiquery")


def needle_chunks(pos: int, n_tokens: int, S: int) -> set[int]:
    return set(range(pos // S, (pos + n_tokens - 1) // S + 1))


def diagnose(model, sample, S: int) -> dict:
    m = sample.meta
    prompt = np.asarray(sample.prompt_ids(), dtype=np.int64)
    L = len(prompt)
    ids = torch.as_tensor(np.concatenate([prompt, np.asarray(sample.answer_ids[:-1], dtype=np.int64)]))[None]
    with torch.no_grad():
        logits, aux = model(ids, return_aux=True, reset_phase=model.reset_phase_for(L))
    # the greedy answer (as the generated convention scores it), decoded through the state after one prefill
    pred_ids = []
    with torch.no_grad():
        state = model.allocate_state(1, prompt_length=L)
        out, state = model.prefill(torch.as_tensor(prompt)[None], state, logits="last")
        for _ in range(len(sample.answer_ids) + 2):
            nxt = int(out[0, -1].argmax())
            pred_ids.append(nxt)
            out, state = model.prefill(torch.tensor([[nxt]]), state, logits="last")
    idx = aux["indices"][0, L - 1, 0].tolist()                # [K] chunks selected by the first answer position
    w = aux["weights"][0, L - 1, 0].tolist()
    # needles are key-major (ramba.tasks.niah): the first num_v belong to the first queried key, whose value the
    # first answer position must copy; the rest are distractor keys or (multiquery) the later queries
    spans = [needle_chunks(p, n, S) for p, n in zip(m["needle_positions"], m["needle_tokens"])]
    nv = int(m.get("num_v", 1))
    target = set().union(*spans[:nv])
    others = set().union(*spans[nv:]) - target if len(spans) > nv else set()
    w_target = sum(x for i, x in zip(idx, w) if i in target)
    w_other = sum(x for i, x in zip(idx, w) if i in others)
    text = bytes(pred_ids).decode("utf-8", "replace")
    first = text.strip().split(",")[0].strip(" .")
    refs = m["references"]                                   # key-major too: the first nv are the first key's
    all_values = [v for v in _needle_values(sample)]
    return dict(task=sample.task, length=L, depth=sample.depth, index=sample.index,
                target_selected=bool(target & set(idx)), other_selected=bool(others & set(idx)),
                w_target=round(w_target, 4), w_other=round(w_other, 4),
                correct_first=first in refs[:nv], first_is_other_needle=first in all_values and first not in refs[:nv],
                prediction=text[:60], reference=refs[0])


def _needle_values(sample) -> list[str]:
    """Every value written into the haystack's needles, read back from the prompt text."""
    import re
    text = bytes(sample.prompt_ids()).decode("utf-8", "replace")
    return re.findall(r"\b(\d{7}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    from ramba.atomic import atomic_write_text
    from ramba.evals.env import git_sha
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    from ramba.train.checkpoint import load_model_dir
    torch.manual_seed(0)
    model = load_model_dir(a.checkpoint).eval()
    S = model.cfg.chunk_size
    tok = ByteTokenizer()
    depths = [(i + 0.5) / a.samples for i in range(a.samples)]
    rows, t0 = [], time.time()
    for name in a.tasks.split(","):
        for s in get_task(name).generate([a.length], depths, 1, 101, tok):
            rows.append(diagnose(model, s, S))
    summary = {}
    for name in a.tasks.split(","):
        rs = [r for r in rows if r["task"] == name]
        n = len(rs)
        wrong = [r for r in rs if not r["correct_first"]]
        summary[name] = dict(
            n=n, correct_first=sum(r["correct_first"] for r in rs) / n,
            target_selected=sum(r["target_selected"] for r in rs) / n,
            other_selected=sum(r["other_selected"] for r in rs) / n,
            mean_w_target=round(float(np.mean([r["w_target"] for r in rs])), 3),
            mean_w_other=round(float(np.mean([r["w_other"] for r in rs])), 3),
            wrong=len(wrong), wrong_target_selected=sum(r["target_selected"] for r in wrong),
            wrong_copied_other_needle=sum(r["first_is_other_needle"] for r in wrong))
    rec = dict(kind="needle-diagnostics", checkpoint=a.checkpoint, length=a.length, task_seed=101,
               git_sha=git_sha(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
               torch=torch.__version__, device="cpu", wall_s=round(time.time() - t0, 1), summary=summary, rows=rows)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    atomic_write_text(a.out, json.dumps(rec, indent=1))
    print("| task | first value right | queried needle selected | other needle selected | weight queried / other "
          "| wrong: queried selected / copied another needle |")
    print("|---|---|---|---|---|---|")
    for name, x in summary.items():
        print(f"| {name} | {x['correct_first']:.0%} | {x['target_selected']:.0%} | {x['other_selected']:.0%} | "
              f"{x['mean_w_target']:.2f} / {x['mean_w_other']:.2f} | {x['wrong_target_selected']}/{x['wrong']} / "
              f"{x['wrong_copied_other_needle']}/{x['wrong']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
