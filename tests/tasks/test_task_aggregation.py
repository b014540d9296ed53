"""RULER aggregation tasks: cwe (common words extraction) and fwe (frequent words extraction)."""
import re
from collections import Counter

import numpy as np
import pytest

from ramba.errors import BadInputError, DoesNotFitError
from ramba.tasks import ByteTokenizer, get_task, list_tasks
from ramba.tasks.aggregation import CWETask, FWETask
from ramba.tasks.cache import CachedPrompt
from ramba.tasks.niah import make_variant

LENGTHS = (1024, 4096, 1 << 16)
_ITEM = re.compile(r"(\d+)\. ([a-z]+)")


def _list_text(s, tok):
    """The decoded list between the instructions and the question."""
    ids = s.prompt_ids()
    return tok.decode(ids[s.meta["prefix_tokens"]:s.length - s.meta["question_tokens"]].tolist())


def cwe_counts(s, tok) -> Counter:
    """Word counts of the numbered list; checks it is numbered 1..N, one item a line, nothing else in it."""
    lines = [x for x in _list_text(s, tok).split("\n") if x.strip()]
    items = [_ITEM.fullmatch(x) for x in lines]
    assert all(items), [x for x, m in zip(lines, items) if not m][:3]
    assert [int(m.group(1)) for m in items] == list(range(1, len(items) + 1))
    assert len(items) == s.meta["items"]
    return Counter(m.group(2) for m in items)


def fwe_counts(s, tok) -> Counter:
    """Coded-word counts of the text; noise marks (runs of dots, the last one possibly cut) are not words."""
    units = _list_text(s, tok).split()
    assert all(re.fullmatch(r"[a-z]{6}|\.{1,3}", u) for u in units)
    return Counter(u for u in units if u[0] != ".")


def test_registered_and_listed():
    names = dict(list_tasks())
    for name, cls in (("cwe", CWETask), ("fwe", FWETask)):
        assert isinstance(get_task(name), cls) and names[name]
    cwe, fwe = get_task("cwe"), get_task("fwe")
    assert (cwe.num_cw, cwe.freq_cw, cwe.freq_ucw) == (10, 30, 3)
    assert (fwe.alpha, fwe.num_top) == (2.0, 3)


@pytest.mark.parametrize("name", ["cwe", "fwe"])
def test_exact_length_and_answer_is_most_frequent(name, hf_tok):
    task = get_task(name)
    for tok in (ByteTokenizer(), hf_tok):
        for length in LENGTHS:
            (s,) = list(task.generate([length], [0.5], 1, length, tok))
            assert sum(len(c) for c in s.prompt_chunks(1000)) == length == s.prompt_length
            refs = s.meta["references"]
            if name == "cwe":
                counts = cwe_counts(s, tok)
                fc, fu = s.meta["freq_cw_used"], s.meta["freq_ucw_used"]
                assert len(refs) == 10 and all(counts[r] == fc for r in refs)
                assert max(c for w, c in counts.items() if w not in refs) <= fu < fc
                if length >= 1 << 16:           # the variant's frequencies wherever the list is long enough
                    assert (fc, fu) == (30, 3)
                    assert s.meta["pad_tokens"] < 40
            else:
                counts = fwe_counts(s, tok)
                top = counts.most_common(4)
                assert [w for w, _ in top[:3]] == refs and top[2][1] > top[3][1]
                assert [c for _, c in top[:3]] == s.meta["top_counts"]
                noise = _list_text(s, tok).count("...")
                assert noise >= s.meta["noise_count"] - 1 and noise > top[0][1]   # rank 1 is the noise
            # the references are not in the instructions or the question; the answer decodes to them
            ids = s.prompt_ids()
            q = length - s.meta["question_tokens"]
            fixed = tok.decode(ids[:s.meta["prefix_tokens"]].tolist() + ids[q:].tolist())
            assert not any(r in fixed for r in refs)
            assert tok.decode(list(s.answer_ids)) == s.answer_text
            assert s.meta["depth_ignored"] and s.needle_token_pos == s.meta["prefix_tokens"]


@pytest.mark.parametrize("name", ["cwe", "fwe"])
def test_deterministic_and_cached_equals_memory(name, hf_tok):
    task = get_task(name)
    a = list(task.generate([3000, 5000], [0.0, 1.0], 2, 7, hf_tok))
    b = list(task.generate([3000, 5000], [0.0, 1.0], 2, 7, hf_tok))
    assert len(a) == 8
    for x, y in zip(a, b):
        assert x.sample_id == y.sample_id and x.meta == y.meta and np.array_equal(x.prompt_ids(), y.prompt_ids())
    # every (length, depth, index) is its own draw; another seed gives other samples
    assert len({tuple(s.meta["references"]) for s in a}) == 8
    (c,) = list(task.generate([3000], [0.0], 1, 8, hf_tok))
    assert c.meta["references"] != a[0].meta["references"]
    # a disk-cached build has the same ids as an in-memory one
    small = make_variant(name, memory_max_tokens=1000)
    (d,) = list(small.generate([5000], [1.0], 1, 7, hf_tok))
    assert isinstance(d.source, CachedPrompt)
    assert d.sample_id == a[-2].sample_id
    assert np.array_equal(d.prompt_ids(), a[-2].prompt_ids()) and d.meta == a[-2].meta


@pytest.mark.parametrize("name", ["cwe", "fwe"])
def test_too_short_is_does_not_fit_with_a_length_that_fits(name, hf_tok):
    task = get_task(name)
    for tok in (ByteTokenizer(), hf_tok):
        need = task.min_length(tok)
        for length in (10, need // 3):
            with pytest.raises(DoesNotFitError, match=f"length >= {need} "):
                list(task.generate([length], [0.5], 1, 0, tok))
        for seed in range(5):       # the length it names fits whatever words are drawn
            (s,) = list(task.generate([need], [0.5], 1, seed, tok))
            assert len(s.prompt_ids()) == need
            assert task.score(s, s.answer_text)["score"] == 1.0


def test_golden_scores():
    tok = ByteTokenizer()
    (cwe,) = list(get_task("cwe").generate([4096], [0.5], 1, 3, tok))
    (fwe,) = list(get_task("fwe").generate([4096], [0.5], 1, 3, tok))
    refs = cwe.meta["references"]
    score = get_task("cwe").score
    assert score(cwe, cwe.answer_text) == {"convention": "generated", "metric": "string_match_all", "score": 1.0,
                                           "correct": True, "pred": cwe.answer_text, "target": refs}
    assert score(cwe, " 1. " + " 2. ".join(refs[:7]).upper())["score"] == pytest.approx(0.7)   # case-insensitive
    assert score(cwe, "\n".join(reversed(refs)))["score"] == 1.0      # order does not matter
    assert score(cwe, "I cannot tell.") == {**score(cwe, "I cannot tell."), "score": 0.0, "correct": False}
    frefs = fwe.meta["references"]
    fscore = get_task("fwe").score
    assert fscore(fwe, f" {frefs[0]}, {frefs[2]} and something")["score"] == pytest.approx(2 / 3)
    assert fscore(fwe, f"{frefs[1]}{frefs[0]}{frefs[2]}")["score"] == 1.0   # RULER: substrings, no word bounds
    tf = fscore(fwe, list(fwe.answer_ids), "teacher_forced")
    assert tf["correct"] and tf["score"] == 1.0 and tf["metric"] == "teacher_forced_exact"
    wrong = list(fwe.answer_ids)
    wrong[-1] += 1
    assert not fscore(fwe, wrong, "teacher_forced")["correct"]
    with pytest.raises(BadInputError):
        fscore(fwe, 123)


def test_bad_settings():
    with pytest.raises(BadInputError, match="freq_cw"):
        CWETask(freq_cw=3, freq_ucw=3)
    with pytest.raises(BadInputError, match="alpha"):
        FWETask(alpha=1.0)
    with pytest.raises(BadInputError, match=r"outside \[0, 1\]"):
        get_task("cwe").generate([5000], [1.5], 1, 0, ByteTokenizer())
