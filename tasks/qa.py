"""RULER qa_1 (SQuAD) and qa_2 (HotpotQA): answer a question whose gold document sits at a chosen depth among
distractor documents, at an exact token length.

Data: a local file in the upstream schema, read through `datasets` (nothing is downloaded):
  qa_1  SQuAD v2.0 JSON (dev-v2.0.json: data[].paragraphs[].{context, qas[].{question, answers[].text,
        is_impossible}}); unanswerable questions are skipped.       Path: $RAMBA_EVAL_SQUAD
  qa_2  HotpotQA distractor JSON (hotpot_dev_distractor_v1.json: [{question, answer, context: [[title,
        [sentences]]], supporting_facts}]); the gold documents are the supporting ones.  Path: $RAMBA_EVAL_HOTPOTQA
tests/fixtures/qa/ holds tiny files in both schemas (our own text).

Prompt (RULER's wording): the instruction, then documents "Document:\n{text}" separated by blank lines, then the
question and "Answer:". The rest of the context is filled with whole documents drawn from the file (i.i.d., not
numbered); the first keeps only its tail so the prompt has the exact length, and the gold document(s) of the
question go between whole documents at the depth (0 = first, 1 = just before the question). Scoring: RULER's string_match_part (any
reference answer found in the output, case-insensitive); teacher-forced: the first reference, token by token.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from ramba.errors import BadInputError
import numpy as np

from ramba.errors import DoesNotFitError
from ramba.tasks.assemble import as_ids
from ramba.tasks.base import (GridTask, Sample, check_depths, check_lengths, check_seed, make_sample_id,
                              register_task, rng_for)
from ramba.tasks.cache import MEMORY_MAX_TOKENS, prompt_source
from ramba.tasks.metrics import check_convention, string_match_part, teacher_forced_match
from ramba.tasks.tokenizers import Tokenizer, encode_batch

GENERATOR_VERSION = 1
INSTRUCTION = ("Answer the question based on the given documents. Only give me the answer and do not output any "
               "other words.\n\nThe following are given documents.\n\n")
QUESTION = ("\n\nAnswer the question based on the given documents. Only give me the answer and do not output any "
            "other words.\n\nQuestion: {question} Answer:")
DOCUMENT = "Document:\n{text}\n\n"
ENV = {"qa_1": "RAMBA_EVAL_SQUAD", "qa_2": "RAMBA_EVAL_HOTPOTQA"}


@dataclass(frozen=True)
class QAItem:
    question: str
    answers: tuple[str, ...]
    gold: tuple[str, ...]          # the documents that hold the answer


@dataclass(frozen=True)
class QAData:
    items: tuple[QAItem, ...]
    documents: tuple[str, ...]     # every document in the file (the distractor pool)
    digest: str                    # sha256 of the file: names the pool and keys the cache


def _load_json(path: str):
    import datasets
    try:
        return datasets.load_dataset("json", data_files=path, split="train")
    except Exception as e:  # noqa: BLE001 - a foreign loader's failure is a bad input here
        raise BadInputError(f"cannot read {path!r} as JSON through datasets ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:200]})") from None


@functools.lru_cache(maxsize=4)
def load_squad(path: str) -> QAData:
    rows = _load_json(path)
    if "data" in rows.column_names:             # the file's top level is {"version", "data": [...]}
        articles = [a for r in rows for a in r["data"]]
    else:
        articles = list(rows)
    items, docs = [], []
    for art in articles:
        for para in art.get("paragraphs") or []:
            ctx = para["context"].strip()
            docs.append(ctx)
            for qa in para.get("qas") or []:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers") or [] if a.get("text")))
                if answers and not qa.get("is_impossible", False):
                    items.append(QAItem(qa["question"].strip(), answers, (ctx,)))
    return _finish(path, items, docs, "SQuAD")


@functools.lru_cache(maxsize=4)
def load_hotpotqa(path: str) -> QAData:
    items, docs = [], []
    for r in _load_json(path):
        paras = {title: "".join(sents).strip() for title, sents in r["context"]}
        docs += paras.values()
        gold_titles = list(dict.fromkeys(t for t, _ in r.get("supporting_facts") or []))
        gold = tuple(paras[t] for t in gold_titles if t in paras) or tuple(paras.values())[:1]
        if r.get("answer"):
            items.append(QAItem(r["question"].strip(), (r["answer"],), gold))
    return _finish(path, items, docs, "HotpotQA")


def _finish(path: str, items: list, docs: list, kind: str) -> QAData:
    if not items:
        raise BadInputError(f"{path!r} holds no answerable {kind} question in the upstream schema")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return QAData(tuple(items), tuple(dict.fromkeys(docs)), h.hexdigest())


class QATask(GridTask):
    def __init__(self, name: str, loader, memory_max_tokens: int = MEMORY_MAX_TOKENS):
        self.name = name
        self._loader = loader
        self.memory_max_tokens = int(memory_max_tokens)
        self.description = (f"RULER {name}: question answering over {'SQuAD' if name == 'qa_1' else 'HotpotQA'} "
                            f"documents from a local file (${ENV[name]}); gold document(s) at the depth; "
                            "string_match_part")

    def data(self) -> tuple[str, QAData]:
        path = os.environ.get(ENV[self.name])
        if not path:
            raise BadInputError(f"{self.name} reads a local file in the upstream schema: set {ENV[self.name]}="
                                f"/path/to/{'dev-v2.0.json' if self.name == 'qa_1' else 'hotpot_dev_distractor_v1.json'}")
        if not os.path.isfile(path):
            raise BadInputError(f"{ENV[self.name]}={path!r} is not a file")
        return path, self._loader(os.path.abspath(path))

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer: Tokenizer) -> Sample:
        length, depth = check_lengths([length])[0], check_depths([depth])[0]
        seed, index = check_seed(seed), check_seed(index)
        path, data = self.data()
        config = {"task": self.name, "version": GENERATOR_VERSION, "data_sha256": data.digest}
        rng = rng_for("sample", self.name, seed, length, repr(depth), index, data.digest)
        item = data.items[int(rng.integers(len(data.items)))]
        pieces, gold_pos = _assemble(tokenizer, data, item, length, depth, rng, self.name)

        def build(emit):
            for piece in pieces:
                emit(piece)

        answer_text = " " + item.answers[0]
        fp = tokenizer.fingerprint()
        source = prompt_source(build, length, {**config, "tokenizer": fp, "seed": seed, "length": length,
                                               "depth": repr(depth), "index": index}, self.memory_max_tokens)
        meta = {"references": list(item.answers), "question": item.question, "metric": "string_match_part",
                "max_new_tokens": 32, "data_file": os.path.basename(path), "data_sha256": data.digest[:16],
                "documents": len(pieces) - 2, "tokenizer": tokenizer.name, "tokenizer_fingerprint": fp[:16]}
        return Sample(task=self.name, length=length, depth=depth, seed=seed, index=index,
                      sample_id=make_sample_id(self.name, length, depth, seed, index),
                      answer_ids=tuple(tokenizer.encode(answer_text)), answer_text=answer_text,
                      needle_token_pos=gold_pos, meta=meta, source=source)

    def score(self, sample: Sample, prediction: Any, convention: str = "generated") -> dict:
        check_convention(convention)
        if convention == "generated":
            if not isinstance(prediction, str):
                raise BadInputError("generated scoring takes the decoded output text")
            hit = string_match_part([prediction], [sample.meta["references"]]) / 100.0
            return {"convention": convention, "metric": "string_match_part", "score": hit, "correct": hit == 1.0,
                    "pred": prediction, "target": sample.meta["references"]}
        ok, frac = teacher_forced_match(prediction, sample.answer_ids)
        return {"convention": convention, "score": float(ok), "correct": ok, "positions_correct": frac}


_ENCODED: dict = {}


def _encoded_documents(tokenizer: Tokenizer, data: QAData) -> list[np.ndarray]:
    key = (data.digest, tokenizer.fingerprint())
    if key not in _ENCODED:
        _ENCODED[key] = [as_ids(x) for x in encode_batch(tokenizer, [DOCUMENT.format(text=d) for d in data.documents])]
    return _ENCODED[key]


def _assemble(tokenizer, data: QAData, item: QAItem, length: int, depth: float, rng, what: str):
    """Token pieces of the prompt (instruction, documents, question) summing to exactly `length`, and the gold
    block's token position. Whole distractor documents are drawn until the budget is filled; the first one keeps
    only its tail so the total is exact, and the gold block goes between whole documents at the depth
    (0 = first, 1 = just before the question)."""
    pre = as_ids(tokenizer.encode(INSTRUCTION))
    post = as_ids(tokenizer.encode(QUESTION.format(question=item.question)))
    gold = as_ids(tokenizer.encode("".join(DOCUMENT.format(text=g) for g in item.gold)))
    budget = length - len(pre) - len(post) - len(gold)
    if budget < 0:
        raise DoesNotFitError(f"length {length} is too small for {what}: its instruction, question and gold "
                              f"document(s) take {length - budget} tokens; use a length >= {length - budget}")
    docs = _encoded_documents(tokenizer, data)
    gold_set = set(item.gold)
    pool = [i for i, d in enumerate(data.documents) if d not in gold_set] or list(range(len(docs)))
    chosen, total = [], 0
    while total < budget:
        d = docs[pool[int(rng.integers(len(pool)))]]
        chosen.append(d)
        total += len(d)
    if chosen:
        chosen[0] = chosen[0][total - budget:]          # keep the tail: every later document is whole
    whole = len(chosen) - 1 if chosen else 0
    k = 1 + int(round(depth * whole)) if chosen else 0   # after the partial first document
    body = chosen[:k] + [gold] + chosen[k:]
    pos = len(pre) + sum(len(x) for x in chosen[:k])
    return [pre, *body, post], pos


register_task(QATask("qa_1", load_squad))
register_task(QATask("qa_2", load_hotpotqa))
