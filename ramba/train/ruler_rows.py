"""Training rows of the RULER family (byte level): NIAH with every key/value type and needle count, and variable
tracking, in the evaluation's format but with wordings drawn from the *train* bank of ramba.tasks.template_bank
(the held-out bank never appears in training; tests check it).

ruler_niah  keys: pseudo-word pairs, 7-digit numbers or UUIDs; values: 7-digit numbers or UUIDs; modes: single,
            multikey (distractor needles of other keys), multivalue (several values of one key, in text order),
            multiquery (several keys asked, answers in query order); haystacks: essay, RULER's repeated passage,
            distractor needles only, or any other pool filler.
ruler_vt    one or two chains of assignments; the queried chain's variables are the answer, in chain order.
The answer (" v1, v2, ...") is the model's target, as the evaluation's teacher-forced convention scores it.
"""
from __future__ import annotations

import numpy as np

from ramba.errors import BadInputError
from ramba.train.data import FillerPools, Row, _Builder

_MODES = ("single", "multikey", "multivalue", "multiquery")
_MODE_P = (0.25, 0.3, 0.2, 0.25)
_HAYSTACKS = ("task_essay", "task_ruler_noise", "needle", None)     # None: a random pool
_HAYSTACK_P = (0.35, 0.2, 0.3, 0.15)


def _distinct(rng, kind: str, n: int, exclude=()) -> list[str]:
    """n distinct keys/values of the evaluation's kinds (pseudo-word pairs, 7-digit numbers, UUIDs)."""
    from ramba.tasks.niah import _draw_distinct
    return _draw_distinct(rng, kind, n, frozenset(exclude))


def _join(queries: list[str]) -> str:
    return queries[0] if len(queries) == 1 else ", ".join(queries[:-1]) + ", and " + queries[-1]


def _needle_haystack(rng, b: _Builder, template: dict, type_k: str, type_v: str, keys: list[str]) -> None:
    """Fill the row with distractor needles (other keys and values), the eval's "needle" haystack."""
    texts, size = [], 0
    while size < len(b.data):
        k, v = _distinct(rng, type_k, 1, keys)[0], _distinct(rng, type_v, 1)[0]
        t = template["needle"].format(key=k, value=v).encode()
        texts.append(t)
        size += len(t)
    blob = b"".join(texts)
    off = int(rng.integers(0, max(1, len(texts[0]))))       # start mid-needle, as a window of the stream would
    blob = (blob + blob)[off:off + len(b.data)]
    b.data[:] = np.frombuffer(blob, dtype=np.uint8)


def ruler_niah_row(rng, pools: FillerPools, length: int, segment=None, phase=0, mode: str | None = None,
                   mode_p=_MODE_P, uuid_keys: float = 0.25, bank: int = 1) -> Row:
    """mode_p: probabilities of single/multikey/multivalue/multiquery; uuid_keys: share of UUID keys;
    bank: the template bank version (template_bank.draw_niah_template)."""
    from ramba.tasks.template_bank import draw_niah_template
    u = rng.random()
    type_k = "uuids" if u < uuid_keys else ("numbers" if u < uuid_keys + (1 - uuid_keys) / 3 else "words")
    type_v = ("numbers", "numbers", "uuids")[int(rng.integers(3))]
    p = np.asarray(mode_p, dtype=float)
    mode = mode or _MODES[int(rng.choice(len(_MODES), p=p / p.sum()))]
    hay = _HAYSTACKS[int(rng.choice(len(_HAYSTACKS), p=_HAYSTACK_P))]
    tword = "number" if type_v == "numbers" else "uuid"
    tpl = draw_niah_template(rng, "train", tword, bank=bank)
    k_len = {"words": 20, "numbers": 7, "uuids": 36}[type_k]
    v_len = 7 if type_v == "numbers" else 36
    needle_len = len(tpl["needle"]) + k_len + v_len
    room = length - 96                                    # bytes for needles, question and answer
    n_k = {"single": 1, "multikey": int(rng.integers(2, 6)), "multivalue": 1, "multiquery": int(rng.integers(2, 5))}[mode]
    n_v = int(rng.integers(2, 5)) if mode == "multivalue" else 1
    n_q = n_k if mode == "multiquery" else 1

    def q_size(nq):
        return len(tpl["question_many"]) + 2 * nq * (k_len + 7) + nq * n_v * (v_len + 2) + 2

    seg = segment
    while n_q > 1 and (q_size(n_q) > room // 2 or (seg and q_size(n_q) > seg)):
        n_q -= 1                                          # short rows and windows: fewer queries
    while n_k > n_q and (n_k * n_v * needle_len * 2 > room - q_size(n_q)):
        n_k -= 1
    while n_v > 1 and n_k * n_v * needle_len * 2 > room - q_size(n_q):
        n_v -= 1
    b = _Builder(rng, pools, length, filler=hay if hay != "needle" else "task_essay", segment=segment, phase=phase)
    keys = _distinct(rng, type_k, n_k)
    values = _distinct(rng, type_v, n_k * n_v)
    if hay == "needle":
        _needle_haystack(rng, b, tpl, type_k, type_v, keys)
    plural = n_q * n_v > 1
    queries = keys[:n_q]
    question = (tpl["question_many"] if plural else tpl["question_one"]).format(query=_join(queries)).encode()
    answer_room = n_q * n_v * (v_len + 2) + 1
    b.reserve_tail(len(question) + answer_room)
    if rng.random() < 0.5 and b.tail_start > 400:
        intro = f"Some {tpl['label']}s are hidden in the text below. Remember them.\n".encode()
        b.put(intro, 0)
    spans: dict[tuple[int, int], int] = {}                # (key, value) -> row position of the value
    for ki in range(n_k):
        for vi in range(n_v):
            v = values[ki * n_v + vi]
            text = tpl["needle"].format(key=keys[ki], value=v)
            pre = text[:text.index(v)].encode()
            s = b.free_span(len(text.encode()) + 1, lo=1)
            if s is None:
                raise BadInputError(f"row length {length} too short for {n_k}x{n_v} needles")
            b.put(text.encode(), s)
            spans[(ki, vi)] = s + len(pre)
    parts: list[tuple[bytes, bool, int]] = [(question, False, -1)]
    first = True
    for qi in range(n_q):
        for vi in sorted(range(n_v), key=lambda j: spans[(qi, j)]):     # a key's values in text order
            v = values[qi * n_v + vi].encode()
            parts += [(b" " if first else b", ", True, -1), (v, True, spans[(qi, vi)])]
            first = False
    parts.append((b".", True, -1))
    b.set_tail(parts)
    return b.row("ruler_niah")


def ruler_vt_row(rng, pools: FillerPools, length: int, segment=None, phase=0, hops=(1, 4), chains=(1, 2),
                 bank: int = 1) -> Row:
    from ramba.tasks.template_bank import draw_vt_template
    tpl = draw_vt_template(rng, "train", bank=bank)
    n_chains = int(rng.integers(chains[0], chains[1] + 1))
    n_vars = int(rng.integers(hops[0], hops[1] + 1)) + 1
    while n_chains * n_vars * 40 > length // 2 and n_vars > 2:
        n_vars -= 1
    hay = ("task_ruler_noise", "task_essay", None)[int(rng.integers(3))]
    b = _Builder(rng, pools, length, filler=hay, segment=segment, phase=phase)
    names: list[str] = []
    while len(names) < n_chains * n_vars:
        v = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 5))
        if v not in names:
            names.append(v)
    vals: list[str] = []
    while len(vals) < n_chains:
        v = str(int(rng.integers(10000, 100000)))
        if v not in vals:
            vals.append(v)
    question = tpl["question"].format(value=vals[0], count=n_vars).encode()
    b.reserve_tail(len(question) + 6 * n_vars + 2)
    chain0_src = []
    for c in range(n_chains):
        chain = names[c * n_vars:(c + 1) * n_vars]
        width = max(1, (b.tail_start - 1) // n_vars)      # statement i lands in the i-th slice: refers backward
        for i, name in enumerate(chain):
            stmt = (tpl["first"].format(var=name, value=vals[c]) if i == 0 else
                    tpl["hop"].format(var=name, prev=chain[i - 1])).encode()
            s = b.free_span(len(stmt), lo=max(1, i * width), hi=(i + 1) * width)
            if s is None:
                raise BadInputError(f"row length {length} too short for {n_chains} chains of {n_vars} variables")
            b.put(stmt, s)
            if c == 0:
                chain0_src.append(s + stmt.index(name.encode()))
    parts: list[tuple[bytes, bool, int]] = [(question, False, -1)]
    for name, src in zip(names[:n_vars], chain0_src):
        parts += [(b" ", True, -1), (name.encode(), True, src)]
    parts.append((b".", True, -1))
    b.set_tail(parts)
    return b.row("ruler_vt")
