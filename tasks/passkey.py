"""Passkey retrieval: a random digit key hidden at a chosen depth of a long haystack, asked for at the end.

Default evaluation task (`passkey`, fixed; change it only with a new task name):
  filler   i.i.d. pseudo-English sentences from a generated pool of 4096 (haystack.py), cut to the exact length
  needle   " The pass key is {key}. Remember it. {key} is the pass key."   (template 0)
  question " What is the pass key? The pass key is"
  answer   " {key}"; key = 5 random digits, the first non-zero
  prompt   filler[:p] + needle + filler[p:] + question, exactly `length` tokens, p = round(depth * filler tokens)
Scoring: generated = the first run of digits in the decoded output equals the key; teacher_forced = the argmax at
every answer position equals the answer token. Records say which (`convention`).

`passkey_row(...)` makes training rows with the same machinery and more variety (templates, fillers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ramba.errors import BadInputError
from ramba.tasks.assemble import Layout, build_array, make_layout
from ramba.tasks.base import GridTask, Sample, check_depths, check_lengths, check_seed, register_task, rng_for
from ramba.tasks.cache import MEMORY_MAX_TOKENS
from ramba.tasks.haystack import FILLER_KINDS, POOL_SEED, filler_stream
from ramba.tasks.metrics import check_convention, first_digit_run, teacher_forced_match
from ramba.tasks.sampling import layout_sample
from ramba.tasks.tokenizers import Tokenizer

GENERATOR_VERSION = 1   # bump when the ids for a given (config, seed, length, depth, index) change


@dataclass(frozen=True)
class PasskeyTemplate:
    needle: str     # contains {key}
    question: str   # the prompt ends with it
    answer: str     # contains {key}: the tokens right after the question


PASSKEY_TEMPLATES: tuple[PasskeyTemplate, ...] = (
    PasskeyTemplate(" The pass key is {key}. Remember it. {key} is the pass key.",
                    " What is the pass key? The pass key is", " {key}"),
    PasskeyTemplate(" The secret number is {key}. Keep it in mind: {key}.",
                    " What is the secret number? The secret number is", " {key}"),
    PasskeyTemplate(" Remember this code: {key}.",
                    " Which code were you told to remember? The code is", " {key}"),
    PasskeyTemplate(" pass key = {key} ;", " pass key =", " {key}"),
)
TRAINING_FILLERS = ("sentences", "noise", "zipf")


KEY_ALPHABETS = {"digits": "0123456789", "letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "hex": "0123456789abcdef"}


def make_key(rng: np.random.Generator, digits: int, kind: str = "digits") -> str:
    """`digits` random symbols of the `kind` alphabet; a digit key starts non-zero (int(key) keeps its length)."""
    alphabet = KEY_ALPHABETS[kind]
    first = alphabet[int(rng.integers(1 if kind == "digits" else 0, len(alphabet)))]
    return first + "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=digits - 1).tolist())


def _check_template(template: int) -> PasskeyTemplate:
    if isinstance(template, bool) or not isinstance(template, (int, np.integer)) \
            or not 0 <= template < len(PASSKEY_TEMPLATES):
        raise BadInputError(f"passkey template {template!r} does not exist: use 0..{len(PASSKEY_TEMPLATES) - 1}")
    return PASSKEY_TEMPLATES[int(template)]


def _check_digits(key_digits: int) -> int:
    if isinstance(key_digits, bool) or not isinstance(key_digits, (int, np.integer)) or not 1 <= key_digits <= 64:
        raise BadInputError(f"key_digits {key_digits!r} must be an integer in 1..64")
    return int(key_digits)


def _check_filler(filler: str, allowed=FILLER_KINDS) -> str:
    if filler not in allowed:
        raise BadInputError(f"unknown passkey filler {filler!r}: use one of {', '.join(allowed)}")
    return filler


def _passkey_layout(tokenizer: Tokenizer, length: int, depth: float, key: str,
                    tpl: PasskeyTemplate) -> tuple[Layout, list[int], str]:
    needle = tokenizer.encode(tpl.needle.format(key=key))
    question = tokenizer.encode(tpl.question)
    answer_text = tpl.answer.format(key=key)
    layout = make_layout(length, [], [(depth, needle)], question, "passkey")
    return layout, tokenizer.encode(answer_text), answer_text


class PasskeyTask(GridTask):
    """See the module docstring. Instances with other settings are fine for experiments; only the default is
    registered as `passkey`."""

    def __init__(self, name: str = "passkey", key_digits: int = 5, template: int = 0, filler: str = "sentences",
                 memory_max_tokens: int = MEMORY_MAX_TOKENS):
        self.name = name
        self.key_digits = _check_digits(key_digits)
        self._tpl = _check_template(template)
        self.template = int(template)
        self.filler = _check_filler(filler)
        self.memory_max_tokens = int(memory_max_tokens)
        self.description = (f"passkey retrieval: a {self.key_digits}-digit key at a given depth of a "
                            f"{self.filler} haystack; exact token length; generated or teacher-forced scoring")

    def config(self) -> dict:
        """Everything besides (tokenizer, seed, length, depth, index) that determines a sample's ids."""
        return {"task": "passkey", "version": GENERATOR_VERSION, "key_digits": self.key_digits,
                "template": self.template, "filler": self.filler, "pool_seed": POOL_SEED}

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer: Tokenizer) -> Sample:
        length, depth = check_lengths([length])[0], check_depths([depth])[0]
        seed, index = check_seed(seed), check_seed(index)
        cfg = self.config()
        key = make_key(rng_for("key", self.name, seed, length, repr(depth), index,
                               *(f"{k}={cfg[k]!r}" for k in sorted(cfg))), self.key_digits)
        layout, answer_ids, answer_text = _passkey_layout(tokenizer, length, depth, key, self._tpl)
        meta = {"key": key, "key_digits": self.key_digits, "template": self.template,
                "needle_tokens": len(layout.inserts[0][1]),
                "needle_depth_achieved": _achieved(layout.insert_positions()[0], layout),
                "max_new_tokens": len(answer_ids) + 8,
                "scoring": {"generated": "first digit run of the output == key",
                            "teacher_forced": "argmax at every answer position == answer token"}}
        return layout_sample(name=self.name, config=cfg, tokenizer=tokenizer, length=length, depth=depth,
                             seed=seed, index=index, layout=layout, filler=self.filler, answer_text=answer_text,
                             answer_ids=answer_ids, meta=meta, memory_max_tokens=self.memory_max_tokens)

    def score(self, sample: Sample, prediction: Any, convention: str = "generated") -> dict:
        """generated: prediction = decoded output text; teacher_forced: prediction = the argmax id at each answer
        position. Returns {"convention", "score" (0 or 1), "correct", "pred", "target"} (+ "positions_correct")."""
        return score_passkey(sample, prediction, convention)


def score_passkey(sample: Sample, prediction: Any, convention: str = "generated") -> dict:
    check_convention(convention)
    key = sample.meta["key"]
    if convention == "generated":
        if not isinstance(prediction, str):
            raise BadInputError(f"generated scoring takes the decoded output text, got {type(prediction).__name__}")
        pred = first_digit_run(prediction)
        ok = pred == key
        return {"convention": convention, "score": float(ok), "correct": ok, "pred": pred, "target": key}
    if isinstance(prediction, str):
        raise BadInputError("teacher-forced scoring takes the argmax token id at each answer position, got text")
    ok, frac = teacher_forced_match(prediction, sample.answer_ids)
    return {"convention": convention, "score": float(ok), "correct": ok, "positions_correct": frac,
            "pred": [int(x) for x in prediction], "target": key}


def _achieved(needle_pos: int, layout: Layout) -> float:
    f = layout.filler_tokens
    return (needle_pos - len(layout.prefix)) / f if f else 0.0


def passkey_row(rng: np.random.Generator, length: int, depth: float | None, tokenizer: Tokenizer,
                key_digits: int = 5, filler: str = "sentences", template: int = 0,
                key_kind: str = "digits") -> tuple[np.ndarray, int]:
    """One training row, in memory: (ids int64 [length + answer tokens], answer_start = length).

    ids[:length] is a passkey prompt of exactly `length` tokens (needle at `depth`, or at a depth drawn from
    `rng` when None), ids[length:] the answer. filler in ("sentences", "noise", "zipf"); template indexes
    PASSKEY_TEMPLATES; key_kind in KEY_ALPHABETS ("digits", "letters", "hex"), key_digits symbols long.
    All randomness comes from `rng`.
    """
    if not isinstance(rng, np.random.Generator):
        raise BadInputError(f"passkey_row needs a numpy Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
    length = check_lengths([length])[0]
    depth = float(rng.random()) if depth is None else check_depths([depth])[0]
    tpl = _check_template(template)
    if key_kind not in KEY_ALPHABETS:
        raise BadInputError(f"unknown key_kind {key_kind!r}: use one of {', '.join(KEY_ALPHABETS)}")
    key = make_key(rng, _check_digits(key_digits), key_kind)
    layout, answer_ids, _ = _passkey_layout(tokenizer, length, depth, key, tpl)
    prompt = build_array(layout, filler_stream(_check_filler(filler, TRAINING_FILLERS), tokenizer, rng))
    ids = np.empty(length + len(answer_ids), dtype=np.int64)
    ids[:length] = prompt
    ids[length:] = answer_ids
    return ids, length


register_task(PasskeyTask())
