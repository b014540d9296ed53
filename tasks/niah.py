"""The RULER needle-in-a-haystack family and variable tracking, on the exact-length token-level machinery.

Variants (which haystack, key/value types, how many keys/values/queries) are data in variants.yaml; this module
holds the two generator families (`niah`, `vt`) and registers one task per variant. Scoring follows RULER:
string_match_all (the fraction of references found in the output, case-insensitive) for every variant here;
teacher-forced scoring compares the argmax at each position of `answer_ids` (the references joined in the order
the model is asked for them).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import numpy as np
import yaml

from ramba.errors import BadInputError
from ramba.tasks.assemble import make_layout
from ramba.tasks.base import GridTask, Sample, check_depths, check_lengths, check_seed, register_task, rng_for
from ramba.tasks.cache import MEMORY_MAX_TOKENS
from ramba.tasks.haystack import POOL_SEED, lexicon, register_pool
from ramba.tasks.metrics import check_convention, string_match_all, teacher_forced_match
from ramba.tasks.sampling import layout_sample
from ramba.tasks.template_bank import HELDOUT_SPLITS
from ramba.tasks.tokenizers import Tokenizer

GENERATOR_VERSION = 1
KEY_SEED = POOL_SEED + 10          # the word-key lexicon
DISTRACTOR_SEED = POOL_SEED + 11   # the distractor needles of the "needle" haystack
N_DISTRACTORS = 4096


@functools.lru_cache(maxsize=1)
def load_variants() -> tuple[dict, dict]:
    """(variants: name -> args, templates: family -> texts) from variants.yaml next to this file."""
    with open(os.path.join(os.path.dirname(__file__), "variants.yaml")) as f:
        data = yaml.safe_load(f)
    templates = data.pop("templates")
    return data, templates


# ---------------------------------------------------------------- keys and values

@functools.lru_cache(maxsize=1)
def _key_words() -> tuple[list[str], list[str]]:
    lex = lexicon(np.random.Generator(np.random.PCG64(KEY_SEED)))
    return lex["adj"], lex["noun"]


def draw_word_key(rng: np.random.Generator) -> str:
    """An adjective-noun pair of pseudo-words, e.g. 'brealful-stoorment' (~360K combinations)."""
    adjs, nouns = _key_words()
    return f"{adjs[rng.integers(len(adjs))]}-{nouns[rng.integers(len(nouns))]}"


def draw_uuid(rng: np.random.Generator) -> str:
    """A random version-4 UUID string from `rng` (never the OS entropy pool, so samples are reproducible)."""
    b = rng.integers(0, 256, size=16, dtype=np.uint8)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.tobytes().hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def draw_number(rng: np.random.Generator, digits: int = 7) -> str:
    return str(int(rng.integers(10 ** (digits - 1), 10 ** digits)))


_DRAW = {"words": draw_word_key, "numbers": draw_number, "uuids": draw_uuid}
_TYPE_WORD = {"numbers": "number", "uuids": "uuid"}


def _draw_distinct(rng, kind: str, n: int, exclude: frozenset = frozenset()) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        x = _DRAW[kind](rng)
        if x not in exclude and x not in out:
            out.append(x)
    return out


@functools.lru_cache(maxsize=8)
def _distractors(type_k: str, type_v: str) -> tuple[frozenset, frozenset, tuple[str, ...]]:
    """(keys, values, needle texts) of the distractors in the "needle" haystack for this key/value type."""
    rng = rng_for("distractors", DISTRACTOR_SEED, type_k, type_v)
    keys = _draw_distinct(rng, type_k, N_DISTRACTORS)
    values = [_DRAW[type_v](rng) for _ in keys]
    tpl = load_variants()[1]["niah"]["needle"]
    texts = tuple(tpl.format(type_v=_TYPE_WORD[type_v], key=k, value=v) for k, v in zip(keys, values))
    return frozenset(keys), frozenset(values), texts


def _join_queries(queries: Sequence[str]) -> str:
    if len(queries) == 1:
        return queries[0]
    return ", ".join(queries[:-1]) + ", and " + queries[-1]


# ---------------------------------------------------------------- shared task plumbing

class _SyntheticTask(GridTask):
    memory_max_tokens: int

    def config(self) -> dict:
        raise NotImplementedError

    def _rng(self, seed, length, depth, index) -> np.random.Generator:
        cfg = self.config()
        return rng_for("sample", self.name, seed, length, repr(depth), index, *(f"{k}={cfg[k]!r}" for k in sorted(cfg)))

    def score(self, sample: Sample, prediction: Any, convention: str = "generated") -> dict:
        """generated: prediction = output text, score = RULER string_match_all for this sample (fraction of the
        references found); teacher_forced: prediction = argmax id per answer position, score 1 iff all match."""
        check_convention(convention)
        refs = sample.meta["references"]
        if convention == "generated":
            if not isinstance(prediction, str):
                raise BadInputError(f"generated scoring takes the decoded output text, got {type(prediction).__name__}")
            frac = string_match_all([prediction], [refs]) / 100.0
            return {"convention": convention, "metric": "string_match_all", "score": frac, "correct": frac == 1.0,
                    "pred": prediction, "target": list(refs)}
        if isinstance(prediction, str):
            raise BadInputError("teacher-forced scoring takes the argmax token id at each answer position, got text")
        ok, pos = teacher_forced_match(prediction, sample.answer_ids)
        return {"convention": convention, "metric": "teacher_forced_exact", "score": float(ok), "correct": ok,
                "positions_correct": pos, "pred": [int(x) for x in prediction], "target": list(refs)}


def _check_choice(what, value, allowed):
    if value not in allowed:
        raise BadInputError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def _check_count(what, value, lo=1, hi=64):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadInputError(f"{what} {value!r} must be an integer in {lo}..{hi}")
    return value


# ---------------------------------------------------------------- NIAH

class NiahTask(_SyntheticTask):
    """num_k keys hidden (the first num_q queried), num_v values each; queried needle 0 at the given depth."""

    def __init__(self, name: str, haystack: str, type_k: str, type_v: str, num_k: int = 1, num_v: int = 1,
                 num_q: int = 1, templates: str = "standard", memory_max_tokens: int = MEMORY_MAX_TOKENS):
        self.name = name
        self.haystack = _check_choice("haystack", haystack, ("noise", "essay", "needle", "zipf"))
        # "standard": variants.yaml's wording; "heldout" / "heldout2": a wording from template_bank.HELDOUT(2) per sample
        self.templates = _check_choice("templates", templates, ("standard", *HELDOUT_SPLITS))
        self.type_k = _check_choice("type_k", type_k, ("words", "numbers", "uuids"))
        self.type_v = _check_choice("type_v", type_v, ("numbers", "uuids"))
        self.num_q = _check_count("num_q", num_q)
        self.num_k = max(_check_count("num_k", num_k), self.num_q)     # every query needs its own key
        self.num_v = _check_count("num_v", num_v)
        self.memory_max_tokens = int(memory_max_tokens)
        self.description = (f"RULER NIAH: {self.num_k} {type_k} key(s) x {self.num_v} {type_v} value(s), "
                            f"{self.num_q} queried, {haystack} haystack"
                            f"{', held-out wording' if templates != 'standard' else ''}; string_match_all")
        if haystack == "needle":
            register_pool(self._filler(), lambda: [*_distractors(self.type_k, self.type_v)[2]])

    def _filler(self) -> str:
        named = {"noise": "ruler_noise", "essay": "essay", "zipf": "zipf"}
        return named.get(self.haystack, f"niah_needles:{self.type_k}:{self.type_v}")

    def config(self) -> dict:
        return {"task": "niah", "version": GENERATOR_VERSION, "haystack": self.haystack, "type_k": self.type_k,
                "type_v": self.type_v, "num_k": self.num_k, "num_v": self.num_v, "num_q": self.num_q,
                "pool_seed": POOL_SEED, **({"templates": self.templates} if self.templates != "standard" else {})}

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer: Tokenizer) -> Sample:
        length, depth = check_lengths([length])[0], check_depths([depth])[0]
        seed, index = check_seed(seed), check_seed(index)
        rng = self._rng(seed, length, depth, index)
        tpl = self._template(rng)
        # in a haystack of distractor needles, the hidden keys and values must not occur among the distractors
        no_keys, no_values = (_distractors(self.type_k, self.type_v)[:2] if self.haystack == "needle"
                              else (frozenset(), frozenset()))
        keys = _draw_distinct(rng, self.type_k, self.num_k, no_keys)
        values = _draw_distinct(rng, self.type_v, self.num_k * self.num_v, no_values)
        values = [values[i * self.num_v:(i + 1) * self.num_v] for i in range(self.num_k)]   # [num_k][num_v]
        type_v = _TYPE_WORD[self.type_v]
        # needle 0 = (key 0, value 0) at the requested depth; every other needle at a random depth
        pairs = [(k, v) for k in range(self.num_k) for v in range(self.num_v)]
        depths = [depth] + [float(x) for x in rng.random(len(pairs) - 1)]
        needles = [tokenizer.encode(tpl["needle"].format(type_v=type_v, key=keys[k], value=values[k][v]))
                   for k, v in pairs]
        queries = keys[:self.num_q]
        plural = self.num_q * self.num_v > 1
        intro = tpl["intro_many" if plural else "intro_one"].format(type_v=type_v)
        question = tpl["question_many" if plural else "question_one"].format(type_v=type_v,
                                                                             query=_join_queries(queries))
        layout = make_layout(length, tokenizer.encode(intro), list(zip(depths, needles)), tokenizer.encode(question),
                             self.name)
        positions = layout.positions_in_input_order()
        # references in the order asked: queries in order; a key's values in the order they appear in the text
        refs = []
        for q in range(self.num_q):
            idx = [j for j, (k, _) in enumerate(pairs) if k == q]
            refs += [values[q][pairs[j][1]] for j in sorted(idx, key=lambda j: positions[j])]
        answer_text = " " + tpl["answer_sep"].join(refs)
        answer_ids = tokenizer.encode(answer_text)
        meta = {"references": refs, "keys": keys, "queries": queries, "needle_depths": depths,
                "needle_tokens": [len(x) for x in needles], "metric": "string_match_all",
                "max_new_tokens": int(tpl["max_new_tokens"]), **{k: v for k, v in self.config().items() if k != "task"}}
        return layout_sample(name=self.name, config=self.config(), tokenizer=tokenizer, length=length, depth=depth,
                             seed=seed, index=index, layout=layout, filler=self._filler(), answer_text=answer_text,
                             answer_ids=answer_ids, meta=meta, memory_max_tokens=self.memory_max_tokens)

    def _template(self, rng: np.random.Generator) -> dict:
        """variants.yaml's niah texts, or (heldout, heldout2) the same fields with a wording training never saw."""
        std = load_variants()[1]["niah"]
        if self.templates == "standard":
            return std
        from ramba.tasks.template_bank import draw_niah_template
        t = draw_niah_template(rng, self.templates, _TYPE_WORD[self.type_v])
        lab = t["label"]
        return {**std, "needle": t["needle"], "question_one": t["question_one"], "question_many": t["question_many"],
                "intro_one": f"A {lab} is hidden in the text below. Memorize it: you will be asked for it at the end.\n",
                "intro_many": f"Some {lab}s are hidden in the text below. Memorize them: you will be asked for them "
                              f"at the end.\n"}


# ---------------------------------------------------------------- variable tracking

def draw_var(rng: np.random.Generator) -> str:
    return "".join(chr(ord("A") + int(x)) for x in rng.integers(0, 26, size=5))


class VTTask(_SyntheticTask):
    """num_chains chains of num_hops assignments (VAR A = 12345, VAR B = VAR A, ...); the question asks for every
    variable of chain 0. Chain 0's first statement sits at the given depth, its later ones after it."""

    def __init__(self, name: str = "vt", haystack: str = "noise", num_chains: int = 1, num_hops: int = 4,
                 templates: str = "standard", memory_max_tokens: int = MEMORY_MAX_TOKENS):
        self.name = name
        self.haystack = _check_choice("haystack", haystack, ("noise", "essay"))
        self.templates = _check_choice("templates", templates, ("standard", *HELDOUT_SPLITS))
        self.num_chains = _check_count("num_chains", num_chains)
        self.num_hops = _check_count("num_hops", num_hops, lo=0)
        self.memory_max_tokens = int(memory_max_tokens)
        self.description = (f"RULER variable tracking: {self.num_chains} chain(s) of {self.num_hops} hops in a "
                            f"{haystack} haystack; string_match_all")

    def config(self) -> dict:
        return {"task": "vt", "version": GENERATOR_VERSION, "haystack": self.haystack,
                "num_chains": self.num_chains, "num_hops": self.num_hops, "pool_seed": POOL_SEED,
                **({"templates": self.templates} if self.templates != "standard" else {})}

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer: Tokenizer) -> Sample:
        length, depth = check_lengths([length])[0], check_depths([depth])[0]
        seed, index = check_seed(seed), check_seed(index)
        tpl = load_variants()[1]["vt"]
        rng = self._rng(seed, length, depth, index)
        if self.templates != "standard":
            from ramba.tasks.template_bank import draw_vt_template
            tpl = {**tpl, **draw_vt_template(rng, self.templates), "intro": "Follow the variables defined in the text below.\n"}
        n_vars = self.num_hops + 1
        names = self._vars(rng, n_vars)                      # [num_chains * n_vars] distinct
        chain_values: list[str] = []     # 5-digit values (RULER's vt), one per chain, distinct
        while len(chain_values) < self.num_chains:
            v = draw_number(rng, digits=5)
            if v not in chain_values:
                chain_values.append(v)
        inserts = []          # (depth, ids) in chain order: chain 0 first, its statements in order
        for c in range(self.num_chains):
            chain = names[c * n_vars:(c + 1) * n_vars]
            if c == 0:   # the queried chain starts at the requested depth; its later hops come after it
                ds = [depth] + sorted(rng.uniform(depth, 1.0, size=n_vars - 1).tolist())
            else:
                ds = sorted(rng.random(n_vars).tolist())
            texts = [tpl["first"].format(var=chain[0], value=chain_values[c])]
            texts += [tpl["hop"].format(var=chain[i], prev=chain[i - 1]) for i in range(1, n_vars)]
            inserts += [(d, tokenizer.encode(t)) for d, t in zip(ds, texts)]
        refs = names[:n_vars]
        question = tpl["question"].format(value=chain_values[0], count=n_vars)
        layout = make_layout(length, tokenizer.encode(tpl["intro"]), inserts, tokenizer.encode(question), self.name)
        answer_text = " " + tpl["answer_sep"].join(refs)
        meta = {"references": refs, "value": chain_values[0], "needle_depths": [d for d, _ in inserts],
                "needle_tokens": [len(x) for _, x in inserts], "metric": "string_match_all",
                "max_new_tokens": int(tpl["max_new_tokens"]), **{k: v for k, v in self.config().items() if k != "task"}}
        filler = "ruler_noise" if self.haystack == "noise" else "essay"
        return layout_sample(name=self.name, config=self.config(), tokenizer=tokenizer, length=length, depth=depth,
                             seed=seed, index=index, layout=layout, filler=filler, answer_text=answer_text,
                             answer_ids=tokenizer.encode(answer_text), meta=meta,
                             memory_max_tokens=self.memory_max_tokens)

    def _vars(self, rng, n_vars: int) -> list[str]:
        out: list[str] = []
        while len(out) < self.num_chains * n_vars:
            v = draw_var(rng)
            if v not in out:
                out.append(v)
        return out


# ---------------------------------------------------------------- registration

FAMILIES = {"niah": NiahTask, "vt": VTTask}   # aggregation.py adds "cwe" and "fwe" (and registers those variants)


def make_variant(name: str, **overrides) -> _SyntheticTask:
    """A task object for the variant `name` of variants.yaml (overrides: e.g. memory_max_tokens)."""
    variants = load_variants()[0]
    if name not in variants:
        raise BadInputError(f"unknown RULER variant {name!r}: known variants are {', '.join(sorted(variants))}")
    args = {**variants[name], **overrides}
    family = args.pop("family")
    return FAMILIES[family](name=name, **args)


for _name, _args in load_variants()[0].items():
    if _args["family"] in FAMILIES:
        register_task(make_variant(_name))
