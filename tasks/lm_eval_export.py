"""Our tasks as lm-eval tasks (the YAMLs and hooks live in tasks/lm_eval/, for `--include_path`): building docs
from our generators and scoring lm-eval's outputs with our scorers. Pure library code, tested without lm-eval."""
from __future__ import annotations

import functools
import json

from ramba.errors import BadInputError

# Per-length metric columns, as lm-eval's RULER port does (its names are the lengths): 1K .. 1M.
LENGTH_METRICS = tuple(1024 << k for k in range(11))
TOKENIZER_KEYS = ("tokenizer", "pretrained", "model")   # the model_args keys lm-eval's RULER tasks read


def resolve_tokenizer_spec(kwargs: dict) -> str:
    """A load_tokenizer spec from lm-eval's model_args/metadata: a folder, or 'byte' for our byte-vocab specs."""
    from ramba.evals.backends import BACKENDS
    for key in TOKENIZER_KEYS:
        v = kwargs.get(key)
        if not isinstance(v, str) or not v:
            continue
        name, sep, ident = v.partition(":")
        if sep and name in BACKENDS:      # model=ramba:checkpoints/x, model=hf:/dir, model=dummy
            v = ident
        elif v in BACKENDS:
            return "byte"
        from ramba.evals.runner import resolve_model_id
        path = resolve_model_id(v)
        from pathlib import Path
        if v == "byte" or Path(path).is_dir() or Path(path).is_file():
            return "byte" if v == "byte" else path
        from ramba.config import PRESETS
        if v in PRESETS:
            return "byte"
    raise BadInputError("our lm-eval tasks size prompts with the model's tokenizer: pass --model_args "
                        "tokenizer=<folder> (or pretrained=<folder>)")


@functools.lru_cache(maxsize=8)
def _tokenizer(spec: str):
    from ramba.tasks.tokenizers import load_tokenizer
    return load_tokenizer(spec)


def _grid(kwargs: dict) -> tuple[list[int], list[float], int, int]:
    from ramba.evals.lengths import parse_depths, parse_lengths
    lengths = kwargs.get("max_seq_lengths", [4096])
    lengths = parse_lengths(",".join(map(str, lengths)) if isinstance(lengths, (list, tuple)) else lengths)
    depths = kwargs.get("depths", 3)
    depths = parse_depths(",".join(map(str, depths)) if isinstance(depths, (list, tuple)) else depths)
    return list(lengths), list(depths), int(kwargs.get("num_samples", 2)), int(kwargs.get("seed", 0))


def references(sample) -> list[str]:
    return list(sample.meta["references"]) if "references" in sample.meta else [sample.meta["key"]]


def build_docs(task: str, tokenizer_spec: str, kwargs: dict) -> list[dict]:
    """One lm-eval doc per sample of the grid; `input` decodes to exactly the sample's prompt ids."""
    from ramba.tasks import get_task
    tok = _tokenizer(tokenizer_spec)
    lengths, depths, samples, seed = _grid(kwargs)
    docs = []
    for s in get_task(task).generate(lengths, depths, samples, seed, tok):
        ids = [int(x) for x in s.prompt_ids()]
        text = tok.decode(ids)
        docs.append({"input": text, "outputs": references(s), "task": s.task, "length": s.length,
                     "max_length": s.length, "depth": s.depth, "seed": s.seed, "index": s.index,
                     "sample_id": s.sample_id, "answer_text": s.answer_text, "answer_ids": list(s.answer_ids),
                     "needle_token_pos": int(s.needle_token_pos), "meta": json.dumps(s.meta), "tokenizer": tokenizer_spec})
    return docs


def doc_scores(doc: dict, output: str) -> dict:
    """Metrics for one doc (see tasks/lm_eval/utils.py)."""
    from ramba.tasks import Sample, get_task
    from ramba.tasks.metrics import string_match_all
    tok = _tokenizer(doc["tokenizer"])
    cut = tok.decode(tok.encode(output)[:len(doc["answer_ids"])])   # the runner's generated convention
    sample = Sample(task=doc["task"], length=doc["length"], depth=doc["depth"], seed=doc["seed"],
                    index=doc["index"], sample_id=doc["sample_id"], answer_ids=tuple(doc["answer_ids"]),
                    answer_text=doc["answer_text"], needle_token_pos=doc["needle_token_pos"],
                    meta=json.loads(doc["meta"]))
    score = float(get_task(doc["task"]).score(sample, cut, "generated")["score"])
    out = {"score": score, "string_match_all": string_match_all([output], [list(doc["outputs"])]) / 100.0}
    for L in LENGTH_METRICS:
        out[str(L)] = score if L == doc["length"] else -1.0
    return out


def per_length_aggregate(values: list[float]) -> float:
    """Mean over the docs of one length (-1 marks the others); -1 when the run has no doc of that length."""
    vals = [v for v in values if v != -1]
    return sum(vals) / len(vals) if vals else -1.0
