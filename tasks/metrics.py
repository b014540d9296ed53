"""Scoring helpers, shared by the tasks. The runner makes the model calls; these only compare.

Two conventions (eval-conventions.md, "Passkey / NIAH conventions"):
- generated: greedy-decoded text, compared as text (passkey: the first run of digits equals the key, as in
  Landmark Attention / InfiniteBench; RULER tasks: string_match_all / string_match_part);
- teacher_forced: the model's argmax at every answer position, with the true answer fed in, must equal the
  answer token there (RAMba's reference evaluation).
"""
from __future__ import annotations

import re
from typing import Sequence

from ramba.errors import BadInputError

CONVENTIONS = ("generated", "teacher_forced")
_DIGITS = re.compile(r"[0-9]+")   # ASCII only: \d would also take e.g. Arabic-Indic digits
# RULER turns control characters into newlines and strips the prediction before matching.
_CONTROL = re.compile(r"[\x00-\x1f]")


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise BadInputError(f"unknown scoring convention {convention!r}: use one of {', '.join(CONVENTIONS)}")
    return convention


def first_digit_run(text: str) -> str | None:
    """The first maximal run of ASCII digits in `text`, or None (so ' 071432' -> '071432', 'abc' -> None)."""
    m = _DIGITS.search(text or "")
    return m.group(0) if m else None


def teacher_forced_match(argmax_ids: Sequence[int], answer_ids: Sequence[int]) -> tuple[bool, float]:
    """(every position right, fraction of positions right). argmax_ids[i] is the prediction for answer_ids[i]."""
    pred = [int(x) for x in argmax_ids]
    gold = [int(x) for x in answer_ids]
    if len(pred) != len(gold):
        raise BadInputError(f"teacher-forced scoring needs one argmax per answer token: got {len(pred)} for "
                            f"{len(gold)} answer tokens")
    if not gold:
        raise BadInputError("teacher-forced scoring of an empty answer")
    hits = sum(p == g for p, g in zip(pred, gold))
    return hits == len(gold), hits / len(gold)


def _clean(text: str) -> str:
    return _CONTROL.sub("\n", text.strip()).strip().lower()


def string_match_all(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """RULER: mean over samples of the fraction of references found (case-insensitive substring) x 100."""
    _check_pairs(preds, refs)
    total = 0.0
    for pred, ref in zip(preds, refs):
        p = _clean(pred)
        total += sum(r.lower() in p for r in ref) / len(ref)
    return 100.0 * total / len(preds)


def string_match_part(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """RULER: mean over samples of 1 if ANY reference is found (not the fraction: RULER issue #15) x 100."""
    _check_pairs(preds, refs)
    total = 0.0
    for pred, ref in zip(preds, refs):
        p = _clean(pred)
        total += max(float(r.lower() in p) for r in ref)
    return 100.0 * total / len(preds)


def _check_pairs(preds, refs) -> None:
    if isinstance(preds, str):
        raise BadInputError("string_match_* takes a list of predictions, got one string")
    if len(preds) != len(refs) or not preds:
        raise BadInputError(f"string_match_* needs as many reference lists as predictions (>0): "
                            f"{len(preds)} vs {len(refs)}")
    for ref in refs:
        if isinstance(ref, str) or not ref:
            raise BadInputError("each sample's references must be a non-empty list of strings")


METRICS = {"string_match_all": string_match_all, "string_match_part": string_match_part}
