"""Perplexity against context length on a long text (`ramba-eval ppl`), offline.

For each context length L, `windows` windows of L tokens are scored with per-position logits in segmented
prefills (evals/lm_scoring.py). They start at evenly spaced points of the text, the same for every L (so a longer
L reads more of the same passages, not other ones), and never overlap:
  nonoverlapping  every token after the window's first is scored (contexts 1..L-1: the average over positions)
  sliding         only the last S = L*stride tokens are scored, so each sees at least L-S tokens of context
                  (the scored part of a stride-S sliding evaluation)
Rows (one per mode and length) go to ppl.jsonl in the output folder, with ppl_meta.json beside it; the report
draws perplexity against L. Lengths beyond what the text holds are an error, never a silent cut.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError, DoesNotFitError
from ramba.evals.lengths import parse_lengths

ROWS_FILE = "ppl.jsonl"
META_FILE = "ppl_meta.json"
MODES = ("nonoverlapping", "sliding")


@dataclass(frozen=True)
class PPLConfig:
    model: str
    corpus: str = "kjv"                    # "kjv" (packaged) or a .txt file / folder of .txt files
    lengths: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384)
    modes: tuple[str, ...] = MODES
    windows: int = 2                       # windows per (mode, length)
    stride: float = 0.5                    # sliding: step and scored part, as a fraction of L
    tokenizer: str | None = None
    device: str = "cpu"
    segment: int = 16384
    out: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "lengths", parse_lengths(self.lengths))
        modes = tuple(self.modes) if not isinstance(self.modes, str) else \
            (MODES if self.modes == "both" else tuple(m.strip() for m in self.modes.split(",")))
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise BadInputError(f"unknown perplexity mode(s) {bad or modes}; use nonoverlapping, sliding or both")
        object.__setattr__(self, "modes", modes)
        if self.windows < 1 or not 0 < self.stride <= 1:
            raise BadInputError("windows must be >= 1 and stride in (0, 1]")

    def hashed(self) -> dict:
        d = asdict(self)
        d.pop("out")
        d["lengths"], d["modes"] = list(self.lengths), list(self.modes)
        return d

    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        h = hashlib.sha256(json.dumps(self.hashed(), sort_keys=True).encode()).hexdigest()[:12]
        tag = self.model.replace(":", "-").rstrip("/").split("/")[-1]
        return Path("results") / f"ppl-{tag}-{h}"


@dataclass(frozen=True)
class PPLRow:
    mode: str
    context_length: int
    stride_tokens: int
    windows: int
    tokens_scored: int
    nll_per_token: float          # nats
    ppl: float
    bits_per_token: float
    seconds: float
    tokens_per_s: float           # tokens fed (windows x L) per second
    model: str = ""
    corpus: str = ""
    extra: dict = field(default_factory=dict)


def windows_for(n_ids: int, length: int, mode: str, count: int, stride: float) -> list[tuple[int, int]]:
    """(start, first scored offset within the window) per window. Windows start at `count` evenly spaced points
    of the text, the same for every length, so every length reads the same parts of the corpus."""
    if length > n_ids // count:
        raise DoesNotFitError(f"{mode} perplexity at {length} tokens x {count} windows needs {length * count} "
                              f"tokens but the corpus has {n_ids}; use fewer windows, shorter lengths or a longer corpus")
    first = 1 if mode == "nonoverlapping" else length - max(1, int(length * stride))
    return [(i * (n_ids // count), first) for i in range(count)]


def measure(spans_model, ids: np.ndarray, cfg: PPLConfig, progress: bool = True) -> list[PPLRow]:
    from ramba.evals.lm_scoring import Span, score_spans
    rows = []
    for mode in cfg.modes:
        for L in cfg.lengths:
            wins = windows_for(len(ids), L, mode, cfg.windows, cfg.stride)
            spans = [Span(tuple(int(x) for x in ids[a:a + k]), tuple(int(x) for x in ids[a + k:a + L]))
                     for a, k in wins]
            t = time.perf_counter()
            scores = score_spans(spans_model, spans, segment=cfg.segment, batch_size=1, progress=progress,
                                 desc=f"ppl {mode} L={L}")
            el = time.perf_counter() - t
            n = sum(s.tokens for s in scores)
            nll = -sum(s.logprob for s in scores) / n
            rows.append(PPLRow(mode, L, L - wins[0][1] if mode == "sliding" else L, len(wins), n, nll,
                               math.exp(nll), nll / math.log(2), round(el, 3), round(len(wins) * L / el, 1),
                               cfg.model, cfg.corpus))
    return rows


def run_ppl(cfg: PPLConfig, progress: bool = True) -> Path:
    from ramba.evals.backends import load_backend, parse_model_spec, resolve_device
    from ramba.evals.env import git_sha
    from ramba.evals.defaults import REPO_ROOT
    from ramba.evals.lm_scoring import span_model_for
    from ramba.evals.runner import resolve_model_id
    from ramba.tasks.corpus import load_corpus
    text = load_corpus(cfg.corpus)
    name, model_id = parse_model_spec(cfg.model)
    be = load_backend(name, resolve_model_id(model_id), device=resolve_device(cfg.device), tokenizer=cfg.tokenizer)
    ids = np.asarray(be.tokenizer.encode(text), dtype=np.int64)
    for mode in cfg.modes:   # every window fits before any model call
        for L in cfg.lengths:
            windows_for(len(ids), L, mode, cfg.windows, cfg.stride)
    out = cfg.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    import torch
    with torch.inference_mode():
        rows = measure(span_model_for(be), ids, cfg, progress)
    meta = {"kind": "ppl", "config": cfg.hashed(), "model": cfg.model, "backend": be.name,
            "tokenizer": be.tokenizer.name, "corpus_tokens": int(len(ids)), "corpus_chars": len(text),
            "git_sha": git_sha(REPO_ROOT), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=1) + "\n")
    atomic_write_text(out / ROWS_FILE, "".join(json.dumps(asdict(r)) + "\n" for r in rows))
    return out


def read_ppl(folder) -> tuple[dict, list[dict]]:
    d = Path(folder)
    if not (d / META_FILE).is_file() or not (d / ROWS_FILE).is_file():
        raise BadInputError(f"{str(d)!r} is not a perplexity results folder (needs {META_FILE} and {ROWS_FILE})")
    rows = [json.loads(x) for x in (d / ROWS_FILE).read_text().splitlines() if x.strip()]
    return json.loads((d / META_FILE).read_text()), rows
