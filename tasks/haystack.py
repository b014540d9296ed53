"""Haystack material, generated locally (no downloads): pseudo-English text pools and token-level filler streams.

A text pool (sentences, pseudo-words, essay sentences) is a fixed, seeded list of strings. Per tokenizer it is
encoded once into a `TokenPool` (flat ids + offsets). A `UnitStream` then draws pool units by a seeded numpy RNG
and concatenates their ids with one vectorised gather, so a haystack of L tokens costs O(L) numpy work and never
a Python string or a re-tokenisation of the prompt.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ramba.errors import BadInputError
from ramba.tasks.tokenizers import Tokenizer, encode_batch

# ---------------------------------------------------------------- pseudo-English text (tokenizer independent)

_FUNCTION = {
    "det": ["the", "a", "this", "that", "each", "every", "some", "one", "another", "their", "its", "our"],
    "prep": ["of", "in", "on", "with", "from", "over", "under", "near", "beside", "across", "behind", "through",
             "around", "after", "before", "without", "among", "toward"],
    "conj": ["and", "but", "while", "because", "although", "so", "until", "since", "whereas", "unless"],
    "adv": ["slowly", "quietly", "often", "never", "always", "rarely", "again", "soon", "still", "gently", "well",
            "almost", "perhaps", "later", "together", "openly"],
}
_ONSETS = ["b", "br", "c", "cl", "cr", "d", "dr", "f", "fl", "g", "gl", "gr", "h", "j", "k", "l", "m", "n", "p",
           "pl", "pr", "r", "s", "sh", "sl", "sp", "st", "t", "th", "tr", "v", "w", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou", "ie", "y"]
_CODAS = ["", "", "", "n", "r", "l", "s", "t", "m", "nd", "st", "rk", "ll", "ng", "sh"]
_NOUN_END = ["", "", "er", "ion", "ment", "ness", "ity", "ard"]
_ADJ_END = ["ous", "ful", "ic", "y", "al", "ish", "ent", "ive"]
_VERB_END = ["ed", "ed", "s", "es", "ened", "ated"]


def _pseudo_stem(rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 4))
    return "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                   + _CODAS[rng.integers(len(_CODAS))] for _ in range(n))


def lexicon(rng: np.random.Generator, n_nouns=900, n_verbs=400, n_adjs=400) -> dict[str, list[str]]:
    def words(n, ends):
        out, seen = [], set()
        while len(out) < n:
            w = _pseudo_stem(rng) + ends[rng.integers(len(ends))]
            if 2 <= len(w) <= 14 and w not in seen:
                seen.add(w)
                out.append(w)
        return out
    return {"noun": words(n_nouns, _NOUN_END), "verb": words(n_verbs, _VERB_END),
            "adj": words(n_adjs, _ADJ_END), **_FUNCTION}


def _pick(rng, lex, kind):
    words = lex[kind]
    return words[rng.integers(len(words))]


def _noun_phrase(rng, lex) -> str:
    parts = [_pick(rng, lex, "det")]
    for _ in range(int(rng.integers(0, 3))):
        parts.append(_pick(rng, lex, "adj"))
    parts.append(_pick(rng, lex, "noun"))
    if rng.random() < 0.3:
        parts += [_pick(rng, lex, "prep"), _pick(rng, lex, "det"), _pick(rng, lex, "noun")]
    return " ".join(parts)


def _clause(rng, lex) -> str:
    parts = [_noun_phrase(rng, lex), _pick(rng, lex, "verb")]
    if rng.random() < 0.7:
        parts.append(_noun_phrase(rng, lex))
    if rng.random() < 0.4:
        parts.append(_pick(rng, lex, "adv"))
    return " ".join(parts)


def pseudo_sentences(n: int, seed: int, max_clauses: int = 3) -> list[str]:
    """n distinct pseudo-English sentences (letters, commas, periods; never digits) from a fixed seed."""
    rng = np.random.Generator(np.random.PCG64(seed))
    lex = lexicon(rng)
    out, seen = [], set()
    while len(out) < n:
        s = _clause(rng, lex)
        for _ in range(int(rng.integers(0, max_clauses))):
            s += f", {_pick(rng, lex, 'conj')} {_clause(rng, lex)}"
        s = s[0].upper() + s[1:] + "."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def pseudo_words(n: int, seed: int) -> list[str]:
    """n distinct pseudo-words (lowercase letters), in a fixed order that a Zipf draw treats as frequency rank."""
    rng = np.random.Generator(np.random.PCG64(seed))
    lex = lexicon(rng, n_nouns=n, n_verbs=0, n_adjs=0)
    words = [w for k in ("det", "prep", "conj") for w in lex[k]] + lex["noun"]
    return words[:n]


# RULER's "noise" haystack (a fixed repeated passage). Kept for RULER-compatible variants only: it IS periodic.
RULER_NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

# ---------------------------------------------------------------- token pools

POOL_SEED = 202500001      # fixed: the pool is part of the task definition (recorded in cache keys)
N_SENTENCES = 4096
N_WORDS = 8192


@dataclass(frozen=True)
class TokenPool:
    """Pre-tokenised units: unit u is ids[offsets[u]:offsets[u] + lens[u]]."""
    ids: np.ndarray        # [N_tok] int32
    offsets: np.ndarray    # [U] int64
    lens: np.ndarray       # [U] int64, every unit >= 1 token

    @property
    def units(self) -> int:
        return len(self.lens)

    @classmethod
    def from_id_lists(cls, lists: list[list[int]]) -> "TokenPool":
        lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        if len(lists) == 0 or lens.min() < 1:
            raise BadInputError("the tokenizer encodes a haystack unit to zero tokens: use another tokenizer")
        ids = np.fromiter((t for x in lists for t in x), dtype=np.int64, count=int(lens.sum()))
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        return cls(ids.astype(np.int32), offsets, lens)

    def gather(self, units: np.ndarray) -> np.ndarray:
        """Concatenate the ids of `units` [n] -> int32 [sum(lens[units])], vectorised."""
        lens = self.lens[units]                                  # [n]
        total = int(lens.sum())
        out_start = np.cumsum(lens) - lens                       # [n] where each unit lands in the output
        src = np.repeat(self.offsets[units] - out_start, lens)   # [total] shift from output pos to pool pos
        src += np.arange(total, dtype=np.int64)
        return self.ids[src]


def _essay_units() -> list[str]:
    """Longer sentences; about one in six opens a paragraph (a blank line before it), so the haystack reads as prose in
    paragraphs (RULER uses Paul Graham essays; we generate, never download)."""
    sents = pseudo_sentences(N_SENTENCES, POOL_SEED + 1, max_clauses=4)
    return [("\n\n" if i % 6 == 0 else " ") + s for i, s in enumerate(sents)]


_TEXTS: dict[str, Callable[[], list[str]]] = {
    # " " prefix: each unit is encoded as it appears inside running text (word-initial space).
    "sentences": lambda: [" " + s for s in pseudo_sentences(N_SENTENCES, POOL_SEED)],
    "essay": _essay_units,
    "words": lambda: [" " + w for w in pseudo_words(N_WORDS, POOL_SEED + 2)],
    "ruler_noise": lambda: [" " + RULER_NOISE],
}
_text_cache: dict[str, list[str]] = {}
_pool_cache: dict[tuple[str, str], TokenPool] = {}
_lock = threading.Lock()


def register_pool(kind: str, make_texts: Callable[[], list[str]]) -> None:
    """Add a text pool (e.g. a task's distractor needles); `make_texts` runs once, on first use. A name is
    registered once: the name stands for the content, so a second registration under it is ignored."""
    with _lock:
        _TEXTS.setdefault(kind, make_texts)


def pool_texts(kind: str) -> list[str]:
    if kind not in _TEXTS:
        raise BadInputError(f"unknown haystack pool {kind!r}: known pools are {', '.join(sorted(_TEXTS))}")
    with _lock:
        if kind not in _text_cache:
            _text_cache[kind] = _TEXTS[kind]()
        return _text_cache[kind]


def token_pool(kind: str, tokenizer: Tokenizer) -> TokenPool:
    """The pool `kind` encoded by `tokenizer`, memoised per (kind, tokenizer fingerprint)."""
    key = (kind, tokenizer.fingerprint())
    pool = _pool_cache.get(key)
    if pool is None:
        pool = TokenPool.from_id_lists(encode_batch(tokenizer, pool_texts(kind)))
        with _lock:
            _pool_cache[key] = pool
    return pool


def noise_pool(tokenizer: Tokenizer) -> TokenPool:
    """Single-token units: every distinct id the sentence pool uses (ordinary text tokens, never specials)."""
    key = ("noise", tokenizer.fingerprint())
    pool = _pool_cache.get(key)
    if pool is None:
        ids = np.unique(token_pool("sentences", tokenizer).ids).astype(np.int32)
        pool = TokenPool(ids, np.arange(len(ids), dtype=np.int64), np.ones(len(ids), dtype=np.int64))
        with _lock:
            _pool_cache[key] = pool
    return pool

# ---------------------------------------------------------------- unit samplers and streams


def uniform_sampler(pool: TokenPool) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.integers(0, pool.units, size=n, dtype=np.int64)


@functools.lru_cache(maxsize=16)
def _zipf_cdf(units: int, exponent: float) -> np.ndarray:
    w = 1.0 / (np.arange(units, dtype=np.float64) + 2.7) ** exponent
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    cdf.flags.writeable = False
    return cdf


def zipf_sampler(pool: TokenPool, exponent: float = 1.1) -> Callable[[np.random.Generator, int], np.ndarray]:
    """Unit r drawn with probability ~ 1 / (r + 2.7)^exponent (Zipf-Mandelbrot), by inverse CDF."""
    cdf = _zipf_cdf(pool.units, exponent)
    return lambda rng, n: np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), pool.units - 1)


def cyclic_sampler(pool: TokenPool) -> Callable[[np.random.Generator, int], np.ndarray]:
    """Units in order, repeated (RULER's noise haystack); consumes no randomness."""
    state = {"next": 0}

    def draw(rng, n):
        out = (state["next"] + np.arange(n, dtype=np.int64)) % pool.units
        state["next"] = int((state["next"] + n) % pool.units)
        return out
    return draw


class UnitStream:
    """An endless token stream of pool units; `take(n)` yields the next n tokens as int32 pieces.

    Blocks grow geometrically (first ~4K tokens, up to ~256K tokens) so short prompts stay cheap and long ones
    amortise the numpy calls. The unit count of each block depends only on the pool, never on how the caller
    slices the stream, so the same RNG always gives the same tokens. Changing the block sizes changes every
    sample's ids: bump the tasks' GENERATOR_VERSION with it (it is part of the cache key).
    """

    MIN_BLOCK_TOKENS = 4096
    MAX_BLOCK_TOKENS = 1 << 18

    def __init__(self, pool: TokenPool, sampler, rng: np.random.Generator):
        self.pool, self.sampler, self.rng = pool, sampler, rng
        self._mean = max(1.0, float(pool.lens.mean()))
        self._target = self.MIN_BLOCK_TOKENS
        self._buf = np.empty(0, dtype=np.int32)
        self._pos = 0

    def _refill(self) -> None:
        n_units = max(1, int(self._target / self._mean))
        self._buf = self.pool.gather(self.sampler(self.rng, n_units))
        self._pos = 0
        self._target = min(self._target * 2, self.MAX_BLOCK_TOKENS)

    def take(self, n: int, max_piece: int = 1 << 20) -> Iterator[np.ndarray]:
        while n > 0:
            if self._pos >= len(self._buf):
                self._refill()
            k = min(n, len(self._buf) - self._pos, max_piece)
            yield self._buf[self._pos:self._pos + k]
            self._pos += k
            n -= k

    def take_array(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int32)
        at = 0
        for piece in self.take(n):
            out[at:at + len(piece)] = piece
            at += len(piece)
        return out


FILLER_KINDS = ("sentences", "noise", "zipf", "essay", "ruler_noise")


def filler_stream(kind: str, tokenizer: Tokenizer, rng: np.random.Generator) -> UnitStream:
    """sentences: i.i.d. pseudo-English sentences; essay: longer ones; noise: i.i.d. text tokens;
    zipf: Zipf-distributed pseudo-words; ruler_noise: RULER's repeated passage (periodic, for RULER parity)."""
    if kind in ("sentences", "essay"):
        pool = token_pool(kind, tokenizer)
        return UnitStream(pool, uniform_sampler(pool), rng)
    if kind == "noise":
        pool = noise_pool(tokenizer)
        return UnitStream(pool, uniform_sampler(pool), rng)
    if kind == "zipf":
        pool = token_pool("words", tokenizer)
        return UnitStream(pool, zipf_sampler(pool), rng)
    if kind == "ruler_noise":
        pool = token_pool("ruler_noise", tokenizer)
        return UnitStream(pool, cyclic_sampler(pool), rng)
    if kind in _TEXTS:  # a registered pool: i.i.d. units
        pool = token_pool(kind, tokenizer)
        return UnitStream(pool, uniform_sampler(pool), rng)
    raise BadInputError(f"unknown filler {kind!r}: known fillers are {', '.join(FILLER_KINDS)}")
