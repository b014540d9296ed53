"""Which part of a held-out wording breaks retrieval? A 2 x 2 x 2 ablation on niah_single_2 (one needle in an
essay, 7-digit value) at 4K: the label phrase (train "special magic number" / a held-out label), the needle frame
(the standard frame / a held-out frame) and the question frame (standard / held-out), all eight combinations on
the same haystacks, keys and values. CPU, fp32, greedy; the intro sentence names the label.

    python benchmarks/generalization/wording_ablation.py checkpoints/ramba-tiny --samples 20 \
        --out benchmarks/records/generalization/cpu/wording-ablation/ramba-tiny.json [--gen-tokens task]

The cell (train, train, train) is the in-distribution task; (heldout, heldout, heldout) is close to
heldout_niah_single_2 (which draws label and frames per sample from template_bank.HELDOUT).
`--questions` adds question frames that split the held-out question into its parts: heldout_cue_is (the held-out
frame ending in the standard cue " is" instead of " reads") and train_cue_reads (the standard frame ending in
" reads"):

    python benchmarks/generalization/wording_ablation.py CK --samples 20 \
        --questions train,heldout,heldout_cue_is,train_cue_reads --out F
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

STD_LABEL = "special magic {type_v}"
STD_NEEDLE = " One of the {L}s for {key} is: {value}."
STD_QUESTION = "\nWhat is the {L} for {query} mentioned in the text? The {L} for {query} mentioned in the text is"


def _swap_cue(question: str, old: str, new: str) -> str:
    assert question.endswith(old), question
    return question[: -len(old)] + new


QUESTION_FRAMES = ("train", "heldout", "heldout_cue_is", "train_cue_reads")


def ablation_task(label: str, needle: str, question: str, index: int):
    """niah_single_2 with the given wording (label/needle/question 'train' or 'heldout'); held-out parts rotate
    through template_bank.HELDOUT by `index` so every held-out label and frame is used."""
    from ramba.tasks.niah import NiahTask, load_variants
    from ramba.tasks.template_bank import HELDOUT_LABELS, HELDOUT_NEEDLES, HELDOUT_QUESTIONS_ONE
    pick = lambda xs: xs[index % len(xs)]                         # noqa: E731
    lab = (STD_LABEL if label == "train" else pick(HELDOUT_LABELS)).format(type_v="number")
    ndl = (STD_NEEDLE if needle == "train" else pick(HELDOUT_NEEDLES)).replace("{L}", lab)
    qst = {"train": lambda: STD_QUESTION, "heldout": lambda: pick(HELDOUT_QUESTIONS_ONE),
           "heldout_cue_is": lambda: _swap_cue(pick(HELDOUT_QUESTIONS_ONE), " reads", " is"),
           "train_cue_reads": lambda: _swap_cue(STD_QUESTION, " is", " reads")}[question]().replace("{L}", lab)

    class Ablated(NiahTask):
        def _template(self, rng):
            std = load_variants()[1]["niah"]
            return {**std, "needle": ndl, "question_one": qst, "question_many": qst,
                    "intro_one": f"A {lab} is hidden in the text below. Memorize it: you will be asked for it at the end.\n"}

        def _rng(self, seed, length, depth, index):   # the same haystack, key and value in every cell
            return NiahTask("niah_single_2", haystack="essay", type_k="words", type_v="numbers")._rng(
                seed, length, depth, index)

    return Ablated(f"ablation-{label}-{needle}-{question}", haystack="essay", type_k="words", type_v="numbers")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--gen-tokens", choices=("answer", "task"), default="answer",
                    help="answer: len(answer) tokens (strict); task: 128 tokens scored by substring (RULER)")
    ap.add_argument("--questions", default="train,heldout",
                    help=f"question frames, comma-separated: {', '.join(QUESTION_FRAMES)}")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    questions = a.questions.split(",")
    bad = sorted(set(questions) - set(QUESTION_FRAMES))
    if bad:                                   # before the model loads: bad input fails at once
        ap.error(f"unknown question frame(s) {bad}; choose from {', '.join(QUESTION_FRAMES)}")
    import torch
    from ramba.train.checkpoint import load_model_dir
    from ramba.train.evaluate import task_eval
    model = load_model_dir(Path(a.checkpoint), device="cpu").eval()
    cells, examples = [], []
    for label, needle, question in itertools.product(("train", "heldout"), ("train", "heldout"), questions):
        recs = []
        for i in range(a.samples):          # one sample per depth, held-out parts rotating with the sample
            task = ablation_task(label, needle, question, i)
            recs += task_eval(model, task, [a.length], [(i + 0.5) / a.samples], 1, seed=a.seed,
                              device=torch.device("cpu"), batch_size=1, model_name=Path(a.checkpoint).name,
                              gen_tokens=a.gen_tokens)
        gen = recs
        examples += gen[:2]
        acc = sum(bool(r["correct"]) for r in gen) / len(gen)
        cells.append({"label": label, "needle": needle, "question": question, "n": len(gen), "acc": acc})
        print(f"label {label:7s} needle {needle:7s} question {question:15s}  {acc:5.0%}  (n={len(gen)})", flush=True)
    rec = {"kind": "wording-ablation", "checkpoint": a.checkpoint, "task": "niah_single_2", "length": a.length,
           "task_seed": a.seed, "gen_tokens": a.gen_tokens, "cells": cells,
           "examples": [{k: r[k] for k in ("task", "answer", "prediction")} for r in examples]}
    if a.out:
        from ramba.atomic import atomic_write_text
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps(rec, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
