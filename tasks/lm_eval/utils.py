"""lm-eval hooks for our tasks (`--include_path` this folder): docs from our generators, our scoring.

Docs are built at task load (`custom_dataset`) with the tokenizer lm-eval's model arguments name (`tokenizer`,
else `pretrained`, else `model`: the keys lm-eval's own RULER tasks read), so prompts have the exact token
length for that model's tokenizer. `--metadata` picks the grid:
  max_seq_lengths  prompt lengths in tokens (default [4096]; lm-eval's RULER key)
  depths           needle depths in [0, 1] or a count (default 3: 0, 0.5, 1)
  num_samples      samples per (length, depth) cell (default 2)
  seed             task seed (default 0)
Metrics per doc:
  score             our runner's `generated` convention: the output cut to as many tokens as the answer, scored
                    by the task (passkey: first digit run == key; RULER: string_match_all fraction), so it
                    equals `ramba-eval run` on the same samples
  string_match_all  RULER's metric on the whole output (passkey: the key found anywhere in it)
  "<length>"        `score` under the doc's length; -1 for other lengths (lm-eval's RULER convention), so the
                    results table shows one column per length
"""
from __future__ import annotations


import datasets

from ramba.tasks.lm_eval_export import (build_docs, doc_scores, per_length_aggregate, resolve_tokenizer_spec)


def _make(task: str):
    def custom_dataset(**kwargs):
        docs = build_docs(task, resolve_tokenizer_spec(kwargs), kwargs)
        return {"test": datasets.Dataset.from_list(docs, split=datasets.Split.TEST)}
    custom_dataset.__name__ = task
    return custom_dataset


passkey = _make("passkey")
niah_single_1 = _make("niah_single_1")
niah_single_2 = _make("niah_single_2")
niah_single_3 = _make("niah_single_3")
niah_multikey_1 = _make("niah_multikey_1")
niah_multikey_2 = _make("niah_multikey_2")
niah_multikey_3 = _make("niah_multikey_3")
niah_multivalue = _make("niah_multivalue")
niah_multiquery = _make("niah_multiquery")
vt = _make("vt")
cwe = _make("cwe")
fwe = _make("fwe")
qa_1 = _make("qa_1")
qa_2 = _make("qa_2")


def process_results(doc: dict, results: list[str]) -> dict:
    return doc_scores(doc, results[0])


def aggregate(values: list[float]) -> float:
    return per_length_aggregate(values)
