"""Multiple choice by log-likelihood (`ramba-eval mc FILE.jsonl`), offline, on any backend.

Each JSONL line: {"context": str (or "question"), "choices": [str, ...], "label": int (or the right choice's
text)}. Every choice is scored as log p(choice | context) in one batched prefill per question (the context is
prefilled once and its state copied per choice, evals/lm_scoring.py). acc: the highest log-likelihood is the
label; acc_norm: the same per byte of the choice (lm-eval's acc_norm). Rows go to mc.jsonl, with mc_meta.json.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError

ROWS_FILE = "mc.jsonl"
META_FILE = "mc_meta.json"


@dataclass(frozen=True)
class MCRow:
    index: int
    context_tokens: int
    label: int
    loglikelihoods: list
    pred: int
    pred_norm: int
    correct: bool
    correct_norm: bool


def read_items(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"multiple-choice file {path!r} does not exist; pass a JSONL file")
    items = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ctx = d.get("context", d.get("question"))
            choices = list(d["choices"])
            label = d["label"]
            label = choices.index(label) if isinstance(label, str) else int(label)
        except (ValueError, KeyError, TypeError) as e:
            raise BadInputError(f"{path}:{n}: needs context (or question), choices and label ({e})") from None
        if not isinstance(ctx, str) or len(choices) < 2 or not 0 <= label < len(choices):
            raise BadInputError(f"{path}:{n}: needs a context string, >= 2 choices and a label among them")
        items.append({"context": ctx, "choices": choices, "label": label})
    if not items:
        raise BadInputError(f"{path!r} holds no items")
    return items


def score_items(lm, items: list[dict], progress: bool = True) -> list[MCRow]:
    """lm: a RambaLM (its tokenizer split, span model, batching)."""
    from ramba.evals.lm_scoring import Span, score_spans
    spans, owner = [], []
    for i, it in enumerate(items):
        for c in it["choices"]:
            ctx, cont = lm._split(it["context"], c)
            if not cont:
                raise BadInputError(f"item {i}: empty choice {c!r}")
            spans.append(Span(tuple(ctx), tuple(cont)))
            owner.append(i)
    scores = score_spans(lm.spans, spans, segment=lm.segment, batch_size=lm.batch_size_per_call,
                         progress=progress, desc="multiple choice")
    rows, k = [], 0
    for i, it in enumerate(items):
        n = len(it["choices"])
        ll = [scores[k + j].logprob for j in range(n)]
        norm = [x / max(1, len(c.encode("utf-8"))) for x, c in zip(ll, it["choices"])]
        k += n
        pred, pred_n = max(range(n), key=ll.__getitem__), max(range(n), key=norm.__getitem__)
        rows.append(MCRow(i, len(lm._split(it["context"], it["choices"][0])[0]), it["label"], ll, pred, pred_n,
                          pred == it["label"], pred_n == it["label"]))
    return rows


def run_mc(model: str, data: str, out: str | None = None, tokenizer: str | None = None, device: str = "cpu",
           progress: bool = True) -> Path:
    import hashlib
    from ramba.evals.lm_eval_plugin import RambaLM
    items = read_items(data)
    digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()
    folder = Path(out) if out else Path("results") / (
        f"mc-{model.replace(':', '-').rstrip('/').split('/')[-1]}-"
        f"{hashlib.sha256((model + digest).encode()).hexdigest()[:12]}")
    lm = RambaLM(model=model, tokenizer=tokenizer, device=device, progress=progress)
    t = time.perf_counter()
    rows = score_items(lm, items, progress)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "mc", "model": model, "data": str(data), "data_sha256": digest, "items": len(items),
            "tokenizer": lm.backend.tokenizer.name, "seconds": round(time.perf_counter() - t, 3),
            "acc": sum(r.correct for r in rows) / len(rows), "acc_norm": sum(r.correct_norm for r in rows) / len(rows)}
    atomic_write_text(folder / META_FILE, json.dumps(meta, indent=1) + "\n")
    atomic_write_text(folder / ROWS_FILE, "".join(json.dumps(asdict(r)) + "\n" for r in rows))
    return folder


def read_mc(folder) -> tuple[dict, list[dict]]:
    d = Path(folder)
    if not (d / META_FILE).is_file():
        raise BadInputError(f"{str(d)!r} is not a multiple-choice results folder (needs {META_FILE})")
    return json.loads((d / META_FILE).read_text()), [json.loads(x) for x in (d / ROWS_FILE).read_text().splitlines() if x]
