"""Synthetic long-context training rows at byte level (vocab 256), built fast with numpy.

A row is `length + 1` bytes: the model reads row[:-1] and predicts row[1:]. Every row is haystack filler with
facts written into it and a question + answer at the very end, so the answer sits in the last Mamba reset window
and the fact usually lies in an earlier one: the only path from fact to answer is then HSA (hsa-spec decision 4).

Row kinds (the `mix` of a config picks among them):
  passkey   one key (digits) in one of several templates, optional hard distractors, Landmark-style question
  mqar      multi-query associative recall: many short `key=value` facts spread over the chunks, 2-8 queries
  niah      RULER-style "special magic number for KEY" with distractor needles of other keys, one asked
  vt        RULER-style variable tracking: a chain VAR A = value, VAR B = VAR A, ...; answer lists the chain
  copy      an earlier span of high-entropy filler repeated at the end (dense copy targets)
  text      plain local text (language-model loss only), when the config names local files

Per target position the builder records the answer mask and the *source* position: where in the row the byte to
copy lives (for the retrieval diagnostics "needle chunk in top-k" and "weight on the needle chunk").
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ramba.errors import BadInputError

# ---------------------------------------------------------------------------------------------- filler pools
_INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
          "I will quiz you about the important information there. ")
_WORDS = (
    "the of and to in is was for on that with as by at from his her they this which but not have had are were "
    "one all would there their what so up out if about who get go me when make can like time no just him know "
    "take people into year your good some could them see other than then now look only come its over think also "
    "back after use two how our work first well way even new want because any these give day most us river "
    "mountain city garden window letter morning evening market teacher doctor engine signal history system "
    "paper story music forest winter summer harbor island bridge valley station office company village "
    "machine question answer number problem simple quiet bright heavy gentle sudden ancient modern careful "
    "walked carried opened painted gathered listened traveled measured counted remembered wondered built "
    "under above across behind between during without within toward along around").split()
_ADJ = ("red blue green quiet loud bright dark small large happy sad early late soft hard cold warm wild calm "
        "brave clever eager fancy gentle jolly kind lucky proud silly tidy witty young old rapid slow").split()
_NOUN = ("apple river tiger stone cloud piano garden window rocket candle forest island mirror engine basket "
         "castle dragon falcon guitar hammer jacket kettle ladder magnet needle orange pencil rabbit saddle "
         "tunnel violin wagon zebra anchor bottle").split()


def _essay_text(rng: np.random.Generator, n_bytes: int) -> bytes:
    """Sentence-like filler from a small vocabulary, with occasional numbers (years, counts) as distractors."""
    words = np.array(_WORDS)
    out, size = [], 0
    while size < n_bytes:
        n = int(rng.integers(5, 16))
        ws = list(words[rng.integers(0, len(words), n)])
        if rng.random() < 0.15:  # numbers in the haystack, so "copy any digits" is not a shortcut
            ws.insert(int(rng.integers(0, n)), str(int(rng.integers(1, 3000))))
        s = " ".join(ws).capitalize() + rng.choice([". ", ". ", ", and ", "? ", "! "])
        out.append(s)
        size += len(s)
    return "".join(out).encode()


def _words_text(rng: np.random.Generator, n_bytes: int) -> bytes:
    """Zipf pseudo-words from random letters (high-entropy filler)."""
    vocab = ["".join(chr(97 + c) for c in rng.integers(0, 26, int(rng.integers(2, 9)))) for _ in range(3000)]
    ranks = np.minimum(rng.zipf(1.3, n_bytes // 4), len(vocab)) - 1
    text = " ".join(vocab[r] for r in ranks)
    return text.encode()[:n_bytes]


def _noise_text(rng: np.random.Generator, n_bytes: int) -> bytes:
    """Printable random characters, digits included."""
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ0123456789.,;:-", dtype=np.uint8)
    return alphabet[rng.integers(0, len(alphabet), n_bytes)].tobytes()


class FillerPools:
    """Large byte buffers per filler kind; a row's haystack is a random window of one of them.

    The evaluation haystacks of ramba.tasks (pseudo-English sentences, essay, Zipf words, token noise, RULER's
    repeated passage) come first, so training sees the evaluation's filler distribution; our own essay-with-numbers,
    letter words and character noise add variety.
    """

    TASK_KINDS = ("sentences", "essay", "zipf", "noise", "ruler_noise")

    def __init__(self, seed: int, pool_bytes: int = 1 << 21, local_text: Sequence[str | Path] = (),
                 exclude: Sequence[str] = ()):
        rng = np.random.default_rng(seed)
        self.pools: dict[str, np.ndarray] = {}
        try:
            from ramba.tasks.haystack import filler_stream
            from ramba.tasks.tokenizers import ByteTokenizer
            tok = ByteTokenizer()
            for kind in self.TASK_KINDS:
                ids = filler_stream(kind, tok, np.random.default_rng([seed, len(self.pools)])).take_array(pool_bytes)
                self.pools[f"task_{kind}"] = ids.astype(np.uint8)
        except ImportError:   # tasks package absent: our own fillers only
            pass
        self.pools.update({
            "numbers_essay": np.frombuffer(_essay_text(rng, pool_bytes)[:pool_bytes], dtype=np.uint8),
            "letter_words": np.frombuffer(_words_text(rng, pool_bytes), dtype=np.uint8),
            "char_noise": np.frombuffer(_noise_text(rng, pool_bytes), dtype=np.uint8),
        })
        local = self._read_local(local_text)
        if local is not None:
            self.pools["local"] = local
        unknown = set(exclude) - set(self.pools)
        if unknown:
            raise BadInputError(f"data.exclude_fillers: unknown filler(s) {sorted(unknown)}; known: {sorted(self.pools)}")
        for kind in exclude:          # held out of training: evaluation-only fillers
            del self.pools[kind]
        self.kinds = list(self.pools)

    @staticmethod
    def _read_local(paths: Sequence[str | Path]) -> np.ndarray | None:
        blobs = []
        for p in paths:
            p = Path(p)
            files = sorted(p.rglob("*.txt")) + sorted(p.rglob("*.md")) if p.is_dir() else [p]
            if not files or not all(f.is_file() for f in files):
                raise BadInputError(f"local text {p} has no readable .txt/.md files: point data.local_text at files")
            blobs += [f.read_bytes() for f in files]
        if not blobs:
            return None
        data = b"\n".join(blobs)
        if len(data) < 1 << 16:  # short corpora are tiled so any row length can take a window
            data = data * ((1 << 16) // len(data) + 1)
        return np.frombuffer(data, dtype=np.uint8)

    def window(self, rng: np.random.Generator, n: int, kind: str | None = None) -> np.ndarray:
        """A writable copy of n filler bytes from `kind` (random kind if None)."""
        if kind not in self.pools:        # None, or a kind held out of training: a random training pool
            kind = self.kinds[int(rng.integers(0, len(self.kinds)))]
        pool = self.pools[kind]
        if n > len(pool):
            pool = np.tile(pool, n // len(pool) + 1)
        start = int(rng.integers(0, len(pool) - n + 1))
        return pool[start:start + n].copy()


# ---------------------------------------------------------------------------------------------- one row
@dataclasses.dataclass
class Row:
    """One training row. Arrays index *targets*: target i is row byte i + 1."""
    data: np.ndarray          # [L + 1] uint8
    answer: np.ndarray        # [L] bool: target i is an answer byte
    source: np.ndarray        # [L] int64: row position of the byte to copy for target i, -1 if none
    kind: str


def _digits(rng: np.random.Generator, n: int) -> bytes:
    return "".join(str(d) for d in rng.integers(0, 10, n)).encode()


def _letters(rng: np.random.Generator, n: int, upper: bool = False) -> bytes:
    base = 65 if upper else 97
    return bytes(int(c) for c in rng.integers(base, base + 26, n))


class _Builder:
    """Writes facts into a filler row and the question/answer tail.

    With a Mamba reset every `segment` tokens, the tail (question + answer) is kept inside one reset window, so
    the question is always in the recurrent state when the answer is produced. Half of the rows end with the
    answer (the evaluation layout); the others put the tail at a random offset of the last window that holds it,
    so every alignment of the question to the reset boundary is seen.
    """

    def __init__(self, rng: np.random.Generator, pools: FillerPools, length: int, filler: str | None = None,
                 segment: int | None = None, phase: int = 0):
        self.rng, self.L, self.segment = rng, length, segment
        # resets at positions p % segment == phase; in shifted coordinates (p + shift) they are multiples
        self.shift = (segment - phase % segment) % segment if segment else 0
        self.data = pools.window(rng, length + 1, filler)
        self.answer = np.zeros(length, dtype=bool)
        self.source = np.full(length, -1, dtype=np.int64)
        self.facts: list[tuple[int, int]] = []      # occupied [start, end) spans
        self.tail_start = length + 1

    def reserve_tail(self, n: int) -> int:
        """Choose where a tail of up to n bytes starts; facts are kept before it."""
        end = self.L + 1
        if n >= end:
            raise BadInputError(f"row length {self.L} too short for the question ({n} bytes)")
        seg = self.segment
        if not seg or n > seg:
            self.tail_start = end - n
            return self.tail_start
        a, sh = end - n, self.shift
        if (a + sh) // seg == (end - 1 + sh) // seg and self.rng.random() < 0.5:
            self.tail_start = a                         # evaluation layout: answer last, inside the final window
            return a
        w = (end - 1 + sh) // seg                       # the last window that can hold the whole tail
        while w * seg - sh + n > end and w > 0:
            w -= 1
        hi = min((w + 1) * seg - sh, end) - n
        lo = max(w * seg - sh, end // 2, 1)             # the first half of the row stays free for facts
        self.tail_start = int(self.rng.integers(lo, hi + 1)) if lo <= hi else end - n
        return self.tail_start

    def set_tail(self, parts: list[tuple[bytes, bool, int]]) -> None:
        """parts: (bytes, is_answer, source row position of its first byte or -1), written from tail_start."""
        pos = self.tail_start
        total = sum(len(p) for p, _, _ in parts)
        if pos < 1 or pos + total > self.L + 1:
            raise BadInputError(f"row length {self.L} too short for the question ({total} bytes)")
        for text, is_ans, src in parts:
            self.data[pos:pos + len(text)] = np.frombuffer(text, dtype=np.uint8)
            if is_ans:
                t = np.arange(pos - 1, pos - 1 + len(text))            # targets predicting these bytes
                self.answer[t] = True
                if src >= 0:
                    self.source[t] = src + np.arange(len(text))
            pos += len(text)

    def free_span(self, n: int, lo: int = 0, hi: int | None = None, tries: int = 64) -> int | None:
        """A start s in [lo, hi - n] whose span [s, s+n) overlaps no fact (None if none found)."""
        hi = min(self.tail_start, self.L + 1 if hi is None else hi)
        if hi - lo < n:
            return None
        for _ in range(tries):
            s = int(self.rng.integers(lo, hi - n + 1))
            if all(s + n <= a or s >= b for a, b in self.facts):
                return s
        return None

    def put(self, text: bytes, start: int) -> int:
        self.data[start:start + len(text)] = np.frombuffer(text, dtype=np.uint8)
        self.facts.append((start, start + len(text)))
        return start

    def row(self, kind: str) -> Row:
        return Row(self.data, self.answer, self.source, kind)


# Our own needle/question pairs, beside the evaluation task's templates (ramba.tasks.passkey.PASSKEY_TEMPLATES).
EXTRA_PASSKEY_TEMPLATES = (
    (" The pass key is {key}.", " What is the pass key? The pass key is", " {key}"),
    (" the pass key is {key};", " What is the pass key? The pass key is", " {key}"),
    (" Remember this: the pass key is {key}. ", " What is the pass key? The pass key is", " {key}"),
)


def _passkey_templates() -> list[tuple[str, str, str]]:
    try:
        from ramba.tasks.passkey import PASSKEY_TEMPLATES
        task = [(t.needle, t.question, t.answer) for t in PASSKEY_TEMPLATES]
    except ImportError:
        task = [(" The pass key is {key}. Remember it. {key} is the pass key.",
                 " What is the pass key? The pass key is", " {key}")]
    return task + list(EXTRA_PASSKEY_TEMPLATES)


_TEMPLATES: list | None = None


def passkey_row(rng, pools, length, digits=(5, 5), distractors=0.3, depth=None, segment=None,
                eval_template_p=0.5, phase=0) -> Row:
    """One pass key in the haystack, asked for at the end. With probability eval_template_p the evaluation
    task's template 0 (needle, question, answer) is used, else a random one of the others."""
    global _TEMPLATES
    if _TEMPLATES is None:
        _TEMPLATES = _passkey_templates()
    b = _Builder(rng, pools, length, segment=segment, phase=phase)
    n_dig = int(rng.integers(digits[0], digits[1] + 1))
    key = (str(int(rng.integers(1, 10))) + _digits(rng, n_dig - 1).decode()).encode()
    ti = 0 if rng.random() < eval_template_p else int(rng.integers(1, len(_TEMPLATES)))
    needle_t, question, answer_t = _TEMPLATES[ti]
    needle = needle_t.replace("{key}", key.decode()).encode()
    key_off = len(needle_t[:needle_t.index("{key}")].encode())
    ans_pre = answer_t[:answer_t.index("{key}")].encode()
    ans_post = answer_t[answer_t.index("{key}") + 5:].encode()
    tail = [(question.encode(), False, -1), (ans_pre, True, -1), (key, True, -1), (ans_post + b".", True, -1)]
    b.reserve_tail(sum(len(p) for p, _, _ in tail))
    if rng.random() < 0.2 and b.tail_start > len(_INTRO) + len(needle) + 64:
        b.put(_INTRO.encode(), 0)
    hi = b.tail_start - len(needle)
    if hi < 1:
        raise BadInputError(f"row length {length} too short for a pass key needle")
    start = b.free_span(len(needle)) if depth is None else int(round(depth * (hi - 1)))
    if start is None:
        raise BadInputError(f"row length {length} too short for a pass key needle")
    b.put(needle, start)
    # hard negatives: numbers of other kinds ("magic number", "code") elsewhere in the row
    while rng.random() < distractors:
        other = f" The {rng.choice(['magic number', 'room number', 'pin', 'year'])} is {_digits(rng, 5).decode()}."
        s = b.free_span(len(other))
        if s is None:
            break
        b.put(other.encode(), s)
    tail[2] = (key, True, start + key_off)
    b.set_tail(tail)
    return b.row("passkey")


def mqar_row(rng, pools, length, facts_per_chunk=1.0, chunk=64, max_queries=8, segment=None, phase=0) -> Row:
    """Many `key=value` facts (2-3 letter keys, 2-4 digit values); queries repeat `key=` and copy the value."""
    b = _Builder(rng, pools, length, segment=segment, phase=phase)
    n_facts = max(2, int(length / chunk * facts_per_chunk))
    keys: dict[bytes, tuple[bytes, int]] = {}
    n_q = int(rng.integers(2, max_queries + 1))
    b.reserve_tail(n_q * 10 + 1)
    for _ in range(n_facts):
        k = _letters(rng, int(rng.integers(2, 4)))
        if k in keys:
            continue
        v = _digits(rng, int(rng.integers(2, 5)))
        fact = b" " + k + b"=" + v + b";"
        s = b.free_span(len(fact))
        if s is None:
            break
        b.put(fact, s)
        keys[k] = (v, s + 2 + len(k))
    asked = list(keys)
    rng.shuffle(asked)
    parts: list[tuple[bytes, bool, int]] = [(b"\n", False, -1)]
    for k in asked[:n_q]:
        v, src = keys[k]
        parts += [(b" " + k + b"=", False, -1), (v, True, src), (b";", True, -1)]
    b.set_tail(parts)
    return b.row("mqar")


def _word_key(rng) -> str:
    return f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}"


def niah_row(rng, pools, length, n_needles=(1, 4), segment=None, phase=0) -> Row:
    """RULER-style: 'One of the special magic numbers for KEY is: 7 digits.', distractor keys, one asked."""
    b = _Builder(rng, pools, length, filler=rng.choice(["task_essay", "task_ruler_noise", "task_noise"]),
                 segment=segment, phase=phase)
    n = int(rng.integers(n_needles[0], n_needles[1] + 1))
    n = max(1, min(n, (length - 220) // 120))    # short rows hold fewer needles
    keys: list[str] = []
    while len(keys) < n:
        k = _word_key(rng)
        if k not in keys:
            keys.append(k)
    target = int(rng.integers(0, n))
    q = (f"What is the special magic number for {keys[target]} mentioned in the provided text? "
         f"The special magic number for {keys[target]} mentioned in the provided text is ").encode()
    b.reserve_tail(len(q) + 8)
    src = -1
    for i, k in enumerate(keys):
        v = _digits(rng, 7)
        prefix = f"One of the special magic numbers for {k} is: ".encode()
        s = b.free_span(len(prefix) + 9)
        if s is None:
            raise BadInputError(f"row length {length} too short for {n} magic-number needles")
        b.put(prefix + v + b". ", s)
        if i == target:
            src, value = s + len(prefix), v
    b.set_tail([(q, False, -1), (value, True, src), (b".", True, -1)])
    return b.row("niah")


def vt_row(rng, pools, length, hops=(1, 3), segment=None, phase=0) -> Row:
    """Variable tracking: VAR A = 5 digits, VAR B = VAR A, ... in order; the answer lists A B C ..."""
    b = _Builder(rng, pools, length, filler=rng.choice(["task_ruler_noise", "task_noise", "task_essay"]),
                 segment=segment, phase=phase)
    n = int(rng.integers(hops[0], hops[1] + 1)) + 1
    names = []
    while len(names) < n:
        v = _letters(rng, 5, upper=True)
        if v not in names:
            names.append(v)
    value = _digits(rng, 5)
    q = (b" Question: find all variables that are assigned the value " + value +
         b" in the text above. Answer: they are:")
    b.reserve_tail(len(q) + 6 * n + 1)
    # statements in increasing position order so each chain step refers backward
    spans = []
    seg = max(1, b.tail_start // n)     # statement i lands in the i-th slice of the row
    for i, name in enumerate(names):
        stmt = b"VAR " + name + b" = " + (value if i == 0 else b"VAR " + names[i - 1]) + b". "
        s = b.free_span(len(stmt), lo=i * seg, hi=(i + 1) * seg)
        if s is None:
            raise BadInputError(f"row length {length} too short for a {n}-variable chain")
        b.put(stmt, s)
        spans.append(s + 4)
    parts = [(q, False, -1)]
    for name, src in zip(names, spans):
        parts += [(b" ", False, -1), (name, True, src)]
    parts.append((b".", True, -1))
    b.set_tail(parts)
    return b.row("vt")


def copy_row(rng, pools, length, span=(24, 64), prompt=4, segment=None, phase=0) -> Row:
    """Repeat a random span of earlier high-entropy text at the tail: after the first `prompt` bytes every
    byte of the repeat is a copy target. Dense copy signal (tens of targets per row) to form the in-chunk
    lookup (match the recent context, emit what followed it) before the sparse passkey/MQAR facts."""
    filler = rng.choice(["char_noise", "letter_words", "task_zipf", "task_noise", "task_sentences"])
    b = _Builder(rng, pools, length, filler=filler, segment=segment, phase=phase)
    n = int(rng.integers(span[0], span[1] + 1))
    b.reserve_tail(n + 1)
    hi = b.tail_start - n - (segment or 0) // 2     # source well before the tail (usually an earlier window)
    start = int(rng.integers(0, max(1, hi)))
    src = bytes(b.data[start:start + n])
    b.facts.append((start, start + n))
    b.set_tail([(b" ", False, -1), (src[:prompt], False, -1), (src[prompt:], True, start + prompt)])
    return b.row("copy")


def text_row(rng, pools, length, segment=None, phase=0) -> Row:
    """Plain local text: language-model loss only (no answer)."""
    b = _Builder(rng, pools, length, filler="local" if "local" in pools.pools else None)
    return b.row("text")


def ruler_niah_row(*args, **kw) -> Row:
    from ramba.train.ruler_rows import ruler_niah_row as make
    return make(*args, **kw)


def ruler_vt_row(*args, **kw) -> Row:
    from ramba.train.ruler_rows import ruler_vt_row as make
    return make(*args, **kw)


ROW_KINDS = {"passkey": passkey_row, "mqar": mqar_row, "niah": niah_row, "vt": vt_row, "copy": copy_row,
             "text": text_row, "ruler_niah": ruler_niah_row, "ruler_vt": ruler_vt_row}


# ---------------------------------------------------------------------------------------------- batches
@dataclasses.dataclass
class Batch:
    ids: torch.Tensor         # [B, L] int64 inputs
    targets: torch.Tensor     # [B, L] int64
    answer: torch.Tensor      # [B, L] bool
    source: torch.Tensor      # [B, L] int64 source position (row index == input index), -1 none
    kinds: list[str]

    def to(self, device) -> "Batch":
        return Batch(self.ids.to(device, non_blocking=True), self.targets.to(device, non_blocking=True),
                     self.answer.to(device, non_blocking=True), self.source.to(device, non_blocking=True),
                     self.kinds)


class RowSampler:
    """Draws rows of a task mix. `mix` maps row kind -> probability weight; kwargs per kind in `kind_args`."""

    def __init__(self, mix: dict[str, float], seed: int, local_text: Sequence[str] = (),
                 kind_args: dict[str, dict] | None = None, pool_bytes: int = 1 << 21, segment: int | None = None,
                 exclude_fillers: Sequence[str] = ()):
        unknown = set(mix) - set(ROW_KINDS)
        if unknown:
            raise BadInputError(f"unknown row kinds {sorted(unknown)}: use {sorted(ROW_KINDS)}")
        if "text" in mix and not local_text:
            raise BadInputError("row kind 'text' needs data.local_text (files or folders of .txt/.md)")
        w = np.array([float(v) for v in mix.values()])
        if (w < 0).any() or w.sum() <= 0:
            raise BadInputError(f"data.mix weights must be >= 0 with a positive sum, got {mix}")
        self.kinds, self.p = list(mix), w / w.sum()
        self.kind_args = kind_args or {}
        self.segment = segment
        self.phase = 0            # reset phase of the batch being drawn (the trainer sets it per step)
        self.pools = FillerPools(seed, pool_bytes=pool_bytes, local_text=local_text, exclude=exclude_fillers)

    def row(self, rng: np.random.Generator, length: int, kind: str | None = None, mix: dict | None = None) -> Row:
        if kind is None and mix:
            names = list(mix)
            w = np.array([float(mix[k]) for k in names])
            kind = names[int(rng.choice(len(names), p=w / w.sum()))]
        kind = kind or self.kinds[int(rng.choice(len(self.kinds), p=self.p))]
        kw = {"segment": self.segment, "phase": self.phase, **self.kind_args.get(kind, {})}
        for _ in range(8):    # a random draw that does not fit this row (too many needles) is drawn again
            try:
                return ROW_KINDS[kind](rng, self.pools, length, **kw)
            except BadInputError:
                last = kind
        raise BadInputError(f"row kind {last!r} does not fit {length}-token rows: use longer curriculum rows")

    def batch(self, rng: np.random.Generator, batch_size: int, length: int, kind: str | None = None,
              mix: dict | None = None) -> Batch:
        """`mix` (a stage's own task mix) overrides the sampler's default mix for this batch."""
        if mix and set(mix) - set(ROW_KINDS):
            raise BadInputError(f"unknown row kinds {sorted(set(mix) - set(ROW_KINDS))}: use {sorted(ROW_KINDS)}")
        rows = [self.row(rng, length, kind, mix) for _ in range(batch_size)]
        data = torch.from_numpy(np.stack([r.data for r in rows]).astype(np.int64))      # [B, L+1]
        return Batch(ids=data[:, :-1].contiguous(), targets=data[:, 1:].contiguous(),
                     answer=torch.from_numpy(np.stack([r.answer for r in rows])),
                     source=torch.from_numpy(np.stack([r.source for r in rows])),
                     kinds=[r.kind for r in rows])
