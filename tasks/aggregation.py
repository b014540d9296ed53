"""RULER's aggregation tasks, `cwe` (common words extraction) and `fwe` (frequent words extraction), on the
exact-length token-level machinery.

Both prompts are intro + a generated list of units + question, `length` tokens exactly for any tokenizer. Every
unit (a list number, a word, the noise mark) is encoded once per tokenizer on its own (pools in haystack.py, plus
the list numbers here) and prompts are numpy gathers of those ids: O(L), never a whole-prompt string.

cwe  A numbered list "\\n1. word\\n2. word ...". num_cw common words occur freq_cw times each, every other word
     freq_ucw times; the answer is the num_cw common words (string_match_all). The number of list items N is the
     largest whose tokens fit the room between intro and question; the few tokens left over (less than one item)
     are padding (a one-token newline or space) before the question, so no word is ever cut. Frequencies follow
     the variant (30 / 3) wherever they fit; two documented departures keep the task well-defined at the edges:
       - short prompts: the common words take at most half of the list, so freq_cw = min(30, N // (2 num_cw)) and
         freq_ucw = min(3, max(1, freq_cw // 4)) (RULER also lowers the frequencies for short lengths);
       - very long prompts (more distinct uncommon words needed than the 32768-word pool holds, ~0.5-1M
         tokens): uncommon words repeat more often (freq_ucw grows) and freq_cw = max(30, 2 freq_ucw).
     `meta` records the frequencies used. Unlike RULER, no worked example precedes the list.
fwe  Coded words (6 random lowercase letters) with zeta(alpha) frequencies, as in RULER: rank k occurs
     floor(W k^-alpha / zeta(alpha)) times, rank 1 is the noise mark "...", and the answer is ranks 2..num_top+1
     (string_match_all). W is the largest count whose units fit; the tokens left over are extra noise marks (the
     last one cut to fit). Units are shuffled; the list always ends with a noise mark.

Depth has no meaning here (nothing is hidden at a position): the depth grid is accepted, every depth gives its own
independent random sample (the depth is part of the seed, as for the other tasks) and `meta["depth_ignored"]` is
True; `needle_token_pos` is where the list starts.
"""
from __future__ import annotations

import functools
import math
import threading

import numpy as np

from ramba.errors import BadInputError, DoesNotFitError
from ramba.tasks.assemble import make_layout
from ramba.tasks.base import Sample, check_depths, check_lengths, check_seed, make_sample_id, register_task
from ramba.tasks.cache import MEMORY_MAX_TOKENS, prompt_source
from ramba.tasks.haystack import POOL_SEED, TokenPool, lexicon, register_pool, token_pool
from ramba.tasks.niah import FAMILIES, _check_count, _SyntheticTask, load_variants, make_variant
from ramba.tasks.tokenizers import Tokenizer, encode_batch

GENERATOR_VERSION = 1
CWE_WORDS_SEED = POOL_SEED + 20
FWE_WORDS_SEED = POOL_SEED + 21
CWE_VOCAB = 1 << 15
FWE_VOCAB = 1 << 13
EMIT_ITEMS = 1 << 16          # list items gathered per emitted piece


@functools.lru_cache(maxsize=1)
def cwe_words() -> tuple[str, ...]:
    """CWE_VOCAB distinct pseudo-words of 5+ lowercase letters, fixed by CWE_WORDS_SEED. (Short words are left out:
    string_match_all is a substring test, and a 2-4 letter answer would be found inside many other words.)"""
    lex = lexicon(np.random.Generator(np.random.PCG64(CWE_WORDS_SEED)), n_nouns=CWE_VOCAB + CWE_VOCAB // 4,
                  n_verbs=0, n_adjs=0)
    out = tuple(w for w in lex["noun"] if len(w) >= 5)[:CWE_VOCAB]
    assert len(out) == CWE_VOCAB
    return out


@functools.lru_cache(maxsize=1)
def fwe_words() -> tuple[str, ...]:
    """FWE_VOCAB distinct coded words of 6 random lowercase letters, fixed by FWE_WORDS_SEED."""
    rng = np.random.Generator(np.random.PCG64(FWE_WORDS_SEED))
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < FWE_VOCAB:
        for row in rng.integers(0, 26, size=(FWE_VOCAB, 6)).tolist():
            w = "".join(chr(97 + c) for c in row)
            if w not in seen and len(out) < FWE_VOCAB:
                seen.add(w)
                out.append(w)
    return tuple(out)


register_pool("cwe_words", lambda: [" " + w for w in cwe_words()])
register_pool("fwe_words", lambda: [" " + w for w in fwe_words()])

_num_cache: dict[str, TokenPool] = {}
_num_lock = threading.Lock()


def number_pool(tokenizer: Tokenizer, n: int) -> TokenPool:
    """Unit i = the ids of "\\n{i+1}." for i < at least n (grown in powers of two, memoised per tokenizer)."""
    fp = tokenizer.fingerprint()
    pool = _num_cache.get(fp)
    if pool is None or pool.units < n:
        size = 1 << max(10, (max(n, 1) - 1).bit_length())
        pool = TokenPool.from_id_lists(encode_batch(tokenizer, [f"\n{i}." for i in range(1, size + 1)]))
        with _num_lock:
            _num_cache[fp] = pool
    return pool


def pad_id(tokenizer: Tokenizer) -> int:
    """A neutral one-token piece (newline, else space, else the first token of ' .') for the last few tokens."""
    for text in ("\n", " "):
        ids = tokenizer.encode(text)
        if len(ids) == 1:
            return int(ids[0])
    return int(tokenizer.encode(" .")[0])


def _concat_pools(a: TokenPool, b: TokenPool) -> TokenPool:
    """Units of a, then units of b (b's unit j is unit a.units + j)."""
    return TokenPool(np.concatenate([a.ids, b.ids]), np.concatenate([a.offsets, b.offsets + len(a.ids)]),
                     np.concatenate([a.lens, b.lens]))


def zeta(alpha: float) -> float:
    """Riemann zeta(alpha) for alpha > 1 (direct sum + Euler-Maclaurin tail; ~1e-12 relative)."""
    n = 1000
    k = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum(k ** -alpha) + n ** (1 - alpha) / (alpha - 1) - 0.5 * n ** -alpha
                 + alpha * n ** (-alpha - 1) / 12)


# ---------------------------------------------------------------- shared plumbing

class _ListTask(_SyntheticTask):
    """intro + generated list (its `build_list(filler_tokens, emit)`) + question, with a lazy, cached prompt."""

    family: str

    def _texts(self) -> tuple[str, str, dict]:
        tpl = load_variants()[1][self.family]
        return tpl["intro"].format(**self.config()), tpl["question"].format(**self.config()), tpl

    def _sample(self, length, depth, seed, index, tokenizer, refs, meta, build_list) -> Sample:
        intro, question, tpl = self._texts()
        layout = make_layout(length, tokenizer.encode(intro), [], tokenizer.encode(question), self.name)
        prefix, suffix = layout.prefix, layout.suffix

        def build(emit):
            if len(prefix):
                emit(prefix)
            build_list(layout.filler_tokens, emit)
            if len(suffix):
                emit(suffix)

        cfg = self.config()
        fp = tokenizer.fingerprint()
        source = prompt_source(build, length, {**cfg, "name": self.name, "tokenizer": fp, "seed": seed,
                                               "length": length, "depth": repr(depth), "index": index},
                               self.memory_max_tokens)
        answer_text = " " + tpl["answer_sep"].join(refs)
        answer_ids = tokenizer.encode(answer_text)
        meta = {"references": list(refs), "metric": "string_match_all", "max_new_tokens": int(tpl["max_new_tokens"]),
                "depth_ignored": True, **meta, **{k: v for k, v in cfg.items() if k != "task"},
                "needle_positions": [], "filler": self.family, "haystack_tokens": layout.filler_tokens,
                "prefix_tokens": len(prefix), "question_tokens": len(suffix), "tokenizer": tokenizer.name,
                "tokenizer_fingerprint": fp[:16]}
        return Sample(task=self.name, length=length, depth=depth, seed=seed, index=index,
                      sample_id=make_sample_id(self.name, length, depth, seed, index),
                      answer_ids=tuple(int(t) for t in answer_ids), answer_text=answer_text,
                      needle_token_pos=len(prefix), meta=meta, source=source)

    def _fixed_tokens(self, tokenizer) -> int:
        intro, question, _ = self._texts()
        return len(tokenizer.encode(intro)) + len(tokenizer.encode(question))

    def min_length(self, tokenizer: Tokenizer) -> int:
        raise NotImplementedError

    def _check_fixed(self, length: int, tokenizer: Tokenizer) -> int:
        """The fixed text's tokens; DoesNotFitError (with a length that always fits) if even it overflows."""
        fixed = self._fixed_tokens(tokenizer)
        if length < fixed:
            raise DoesNotFitError(f"length {length} is too small for {self.name}: its instructions and question "
                                  f"take {fixed} tokens with this tokenizer, before any list; use a length >= "
                                  f"{self.min_length(tokenizer)} (enough for any draw of words)")
        return fixed


# ---------------------------------------------------------------- CWE

class CWETask(_ListTask):
    family = "cwe"

    def __init__(self, name: str = "cwe", freq_cw: int = 30, freq_ucw: int = 3, num_cw: int = 10,
                 memory_max_tokens: int = MEMORY_MAX_TOKENS):
        self.name = name
        self.num_cw = _check_count("num_cw", num_cw, hi=1000)
        self.freq_ucw = _check_count("freq_ucw", freq_ucw, hi=1000)
        self.freq_cw = _check_count("freq_cw", freq_cw, lo=self.freq_ucw + 1, hi=10000)
        self.memory_max_tokens = int(memory_max_tokens)
        self.description = (f"RULER common words extraction: a numbered word list, {self.num_cw} words x "
                            f"{self.freq_cw}, the rest x {self.freq_ucw}; name the common ones; string_match_all")

    def config(self) -> dict:
        return {"task": "cwe", "version": GENERATOR_VERSION, "num_cw": self.num_cw, "freq_cw": self.freq_cw,
                "freq_ucw": self.freq_ucw, "vocab": CWE_VOCAB, "pool_seed": POOL_SEED}

    def _plan(self, rng: np.random.Generator, room: int, tokenizer: Tokenizer, fixed: int):
        """(word order perm, fc, fu, seq [N] word ids in occurrence order, pad tokens). Common occurrences come
        first in `seq`; the list is a shuffle of it. The total tokens of N items do not depend on their order
        (item j always carries the number j + 1), so N is a searchsorted over cumulative lengths."""
        words = token_pool("cwe_words", tokenizer)
        perm = rng.permutation(CWE_VOCAB)
        common, rare = perm[:self.num_cw], perm[self.num_cw:]
        fc, fu = self.freq_cw, self.freq_ucw
        mean_item = float(words.lens.mean()) + float(number_pool(tokenizer, 1024).lens.mean())
        n_cap = max(4096, int(room / mean_item * 1.25) + 1024)
        for _ in range(200):
            seq = np.concatenate([np.repeat(common, fc), np.repeat(rare, fu)])      # the supply, S items
            m = min(len(seq), n_cap)
            nums = number_pool(tokenizer, m)
            total = np.cumsum(nums.lens[:m] + words.lens[seq[:m]])                # tokens of the first j+1 items
            n = int(np.searchsorted(total, room, side="right"))
            if n == m and m < len(seq):            # more numbers needed: grow and retry
                n_cap *= 2
                continue
            if n == len(seq):                      # pool of distinct uncommon words exhausted: repeat them more
                fu = fu + max(1, fu // 2)
                fc = max(fc, 2 * fu)
                continue
            if n < 2 * self.num_cw * fc:           # short prompt: the common words take at most half the list
                new_fc = n // (2 * self.num_cw)
                if new_fc < 2:
                    raise DoesNotFitError(f"length {fixed + room} is too small for {self.name}: it needs a list of "
                                          f"at least {4 * self.num_cw} words besides the {fixed} tokens of the "
                                          f"instructions and question; use a length >= "
                                          f"{self.min_length(tokenizer)} (enough for any draw of words)")
                fc = min(fc, new_fc)
                fu = min(fu, max(1, fc // 4))
                continue
            pad = room - (int(total[n - 1]) if n else 0)
            return perm, fc, fu, seq[:n], pad
        raise AssertionError("cwe plan did not converge")   # not reachable: fc only decreases, fu only grows

    def min_length(self, tokenizer: Tokenizer) -> int:
        """A length that always fits: 4 num_cw items of the longest word, plus the fixed text."""
        n = 4 * self.num_cw
        longest = int(token_pool("cwe_words", tokenizer).lens.max()) + int(number_pool(tokenizer, n).lens[:n].max())
        return self._fixed_tokens(tokenizer) + n * longest

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer: Tokenizer) -> Sample:
        length, depth = check_lengths([length])[0], check_depths([depth])[0]
        seed, index = check_seed(seed), check_seed(index)
        fixed = self._check_fixed(length, tokenizer)
        room = length - fixed
        perm, fc, fu, seq, pad = self._plan(self._rng(seed, length, depth, index), room, tokenizer, fixed)
        all_words = cwe_words()
        refs = [all_words[int(w)] for w in perm[:self.num_cw]]
        meta = {"freq_cw_used": fc, "freq_ucw_used": fu, "items": int(len(seq)), "pad_tokens": int(pad)}

        def build_list(filler_tokens: int, emit) -> None:
            rng = self._rng(seed, length, depth, index)
            _, _, _, s, p = self._plan(rng, filler_tokens, tokenizer, fixed)
            order = s[rng.permutation(len(s))]                   # the list: a shuffle of the occurrences
            nums = number_pool(tokenizer, len(order))
            both = _concat_pools(nums, token_pool("cwe_words", tokenizer))
            for a in range(0, len(order), EMIT_ITEMS):
                b = min(len(order), a + EMIT_ITEMS)
                units = np.empty(2 * (b - a), dtype=np.int64)
                units[0::2] = np.arange(a, b)                    # "\n{j+1}."
                units[1::2] = nums.units + order[a:b]            # " word"
                emit(both.gather(units))
            if p:
                emit(np.full(p, pad_id(tokenizer), dtype=np.int32))

        return self._sample(length, depth, seed, index, tokenizer, refs, meta, build_list)


# ---------------------------------------------------------------- FWE

class FWETask(_ListTask):
    family = "fwe"

    def __init__(self, name: str = "fwe", alpha: float = 2.0, num_top: int = 3,
                 memory_max_tokens: int = MEMORY_MAX_TOKENS):
        self.name = name
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 1.0 < float(alpha) <= 10.0:
            raise BadInputError(f"alpha {alpha!r} must be a number in (1, 10]")
        self.alpha = float(alpha)
        self.num_top = _check_count("num_top", num_top, hi=100)
        self.memory_max_tokens = int(memory_max_tokens)
        self.description = (f"RULER frequent words extraction: coded words with zeta({self.alpha:g}) frequencies "
                            f"and '...' noise; name the {self.num_top} most frequent; string_match_all")

    def config(self) -> dict:
        return {"task": "fwe", "version": GENERATOR_VERSION, "alpha": self.alpha, "num_top": self.num_top,
                "vocab": FWE_VOCAB, "pool_seed": POOL_SEED}

    def _units(self, tokenizer):
        words = token_pool("fwe_words", tokenizer)
        noise = TokenPool.from_id_lists([tokenizer.encode(" ...")])
        return _concat_pools(words, noise), words.units           # unit `words.units` is the noise mark

    def _counts(self, w: int) -> np.ndarray:
        """counts[k - 1] = floor(w k^-alpha / zeta(alpha)), k = 1..FWE_VOCAB + 1 (rank 1 = noise)."""
        k = np.arange(1, FWE_VOCAB + 2, dtype=np.float64)
        return np.floor(w * k ** -self.alpha / zeta(self.alpha) + 1e-9).astype(np.int64)

    def _ok(self, c: np.ndarray) -> bool:
        top = c[1:self.num_top + 2]                  # ranks 2..num_top+2
        return bool(np.all(np.diff(top) < 0))        # strictly decreasing: the top num_top words are distinct

    def safe_units(self) -> int:
        """The smallest W from which the top num_top + 1 ranks always have strictly decreasing counts: the gap
        W (k^-a - (k+1)^-a) / zeta(a) between neighbouring ranks k, k + 1 <= num_top + 2 is >= 1."""
        k = np.arange(2, self.num_top + 2, dtype=np.float64)
        gap = float(np.min(k ** -self.alpha - (k + 1) ** -self.alpha))
        return int(math.ceil(zeta(self.alpha) / gap))

    def min_length(self, tokenizer: Tokenizer) -> int:
        """A length that always fits: safe_units() units, every word at the longest word's tokens."""
        pool, noise = self._units(tokenizer)
        c = self._counts(self.safe_units())
        return (self._fixed_tokens(tokenizer) + int(c[1:].sum()) * int(pool.lens[:noise].max())
                + (int(c[0]) + 1) * int(pool.lens[noise]))

    def _plan(self, rng: np.random.Generator, room: int, tokenizer: Tokenizer, fixed: int):
        """(words in rank order [FWE_VOCAB] pool ids, counts [FWE_VOCAB + 1], extra noise marks)."""
        pool, noise = self._units(tokenizer)
        ranked = rng.permutation(noise)              # rank k >= 2 is pool word ranked[k - 2]
        lens = np.concatenate([[pool.lens[noise]], pool.lens[ranked]])      # per rank

        def tokens(w):
            return int(np.dot(self._counts(w), lens))
        lo, hi = 0, 2 * room + 2 * len(lens) + 16    # tokens(hi) > room: each unit is >= 1 token
        while lo < hi:                                # the largest w with tokens(w) <= room
            mid = (lo + hi + 1) // 2
            if tokens(mid) <= room:
                lo = mid
            else:
                hi = mid - 1
        counts = self._counts(lo)
        if not self._ok(counts):
            raise DoesNotFitError(f"length {fixed + room} is too small for {self.name}: the coded text must be long "
                                  f"enough that the {self.num_top} most frequent words have distinct counts; use a "
                                  f"length >= {self.min_length(tokenizer)} (enough for any draw of words)")
        left = room - tokens(lo)
        extra = -(-left // int(pool.lens[noise]))     # ceil: the last noise mark is cut to fit
        return pool, noise, ranked, counts, extra, left

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer: Tokenizer) -> Sample:
        length, depth = check_lengths([length])[0], check_depths([depth])[0]
        seed, index = check_seed(seed), check_seed(index)
        fixed = self._check_fixed(length, tokenizer)
        room = length - fixed
        _, _, ranked, counts, extra, _ = self._plan(self._rng(seed, length, depth, index), room, tokenizer, fixed)
        words = fwe_words()
        refs = [words[int(ranked[k])] for k in range(self.num_top)]
        meta = {"alpha": self.alpha, "top_counts": [int(c) for c in counts[1:self.num_top + 1]],
                "noise_count": int(counts[0] + extra), "units": int(counts.sum() + extra)}

        def build_list(filler_tokens: int, emit) -> None:
            rng = self._rng(seed, length, depth, index)
            pool, noise, ranked_, c, x, left = self._plan(rng, filler_tokens, tokenizer, fixed)
            unit_of_rank = np.concatenate([[noise], ranked_])
            n_noise = int(c[0] + x)
            units = np.repeat(unit_of_rank, np.concatenate([[max(n_noise - 1, 0)], c[1:]]))
            units = units[rng.permutation(len(units))]
            at = 0
            for a in range(0, len(units), EMIT_ITEMS):
                piece = pool.gather(units[a:a + EMIT_ITEMS])
                emit(piece)
                at += len(piece)
            if n_noise:                                # the list ends with a noise mark, cut to fit
                last = pool.gather(np.array([noise]))[:filler_tokens - at]
                if len(last):
                    emit(last)

        return self._sample(length, depth, seed, index, tokenizer, refs, meta, build_list)


# ---------------------------------------------------------------- registration

FAMILIES.update({"cwe": CWETask, "fwe": FWETask})
for _name, _args in load_variants()[0].items():
    if _args["family"] in ("cwe", "fwe"):
        register_task(make_variant(_name))
