import zlib

import numpy as np
import pytest

from ramba.errors import BadInputError, DoesNotFitError
from ramba.tasks import ByteTokenizer, get_task
from ramba.tasks.niah import load_variants, make_variant

# the NIAH and vt variants (cwe and fwe are in test_task_aggregation.py)
VARIANTS = sorted(n for n, a in load_variants()[0].items() if a["family"] in ("niah", "vt"))
HELDOUT = {"heldout_niah_single_2", "heldout_niah_multikey_1", "heldout_niah_multivalue", "heldout_niah_multiquery",
           "heldout_niah_single_3", "heldout_vt", "heldout_filler_niah_single", "heldout_filler_niah_multikey",
           "heldout2_niah_single_2", "heldout2_niah_multikey_1", "heldout2_niah_multivalue", "heldout2_niah_multiquery",
           "heldout2_niah_single_3", "heldout2_vt"}


def test_all_ruler_variants_registered():
    assert set(VARIANTS) == {"niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                             "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt"} | HELDOUT
    for name in VARIANTS:
        assert get_task(name).name == name


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_structure(name, hf_tok):
    rng = np.random.default_rng(zlib.crc32(name.encode()))   # per-variant, stable across runs
    task = get_task(name)
    fam = load_variants()[0][name]["family"]
    held = load_variants()[0][name].get("templates", "standard")
    stmt, assign = {"standard": ("VAR {} =", "= {}."), "heldout": ("Variable {} takes", "takes {}."),
                    "heldout2": ("into {}.", "Put {} into")}[held]
    for tok in (ByteTokenizer(), hf_tok):
        length, depth, seed = int(rng.integers(3000, 6000)), float(rng.random()), int(rng.integers(1 << 20))
        (s,) = list(task.generate([length], [depth], 1, seed, tok))
        ids = np.concatenate(list(s.prompt_chunks(1000)))
        assert len(ids) == length == s.prompt_length
        m = s.meta
        refs = m["references"]
        # the queried needle sits at the requested depth of the filler (other needles before it don't count as
        # filler), within one token
        pos = s.needle_token_pos
        assert pos == m["needle_positions"][0]
        before = sum(n for p, n in zip(m["needle_positions"], m["needle_tokens"]) if p < pos)
        assert abs(pos - m["prefix_tokens"] - before - depth * m["haystack_tokens"]) <= 1.0
        first = ids[s.needle_token_pos:s.needle_token_pos + m["needle_tokens"][0]]
        first = tok.decode(first.tolist())
        assert any(r in first for r in refs) and (fam == "vt" or m["queries"][0] in first)
        # every reference is defined in the context exactly once, and absent from the question
        context = tok.decode(ids[:length - m["question_tokens"]].tolist())
        question = tok.decode(ids[length - m["question_tokens"]:].tolist())
        for r in refs:
            assert context.count(stmt.format(r) if fam == "vt" else r) == 1, (r, name)
            assert r not in question
        if fam == "niah":
            assert len(refs) == m["num_q"] * m["num_v"]
            for q in m["queries"]:
                assert q in question and context.count(q) == m["num_v"]
        else:
            assert m["value"] in question and context.count(assign.format(m["value"])) == 1
            positions = m["needle_positions"][:len(refs)]
            assert positions == sorted(positions)         # the chain's hops appear in order
        # scoring: the answer text scores 1, half the references score 1/2 (RULER string_match_all)
        assert task.score(s, s.answer_text)["score"] == 1.0
        half = " ".join(refs[: len(refs) // 2])
        assert task.score(s, half)["score"] == pytest.approx((len(refs) // 2) / len(refs))
        tf = task.score(s, list(s.answer_ids), convention="teacher_forced")
        assert tf["correct"] and tf["convention"] == "teacher_forced"
        assert tok.decode(list(s.answer_ids)) == s.answer_text


def test_needle_haystack_keeps_query_key_unique(hf_tok):
    task = get_task("niah_multikey_2")
    for s in task.generate([20_000], [0.0, 0.5, 1.0], 2, 7, ByteTokenizer()):
        text = ByteTokenizer().decode(s.prompt_ids().tolist())
        key = s.meta["queries"][0]
        assert text.count(f"for {key} is:") == 1      # distractors never reuse the queried key or its value
        assert text.count(s.meta["references"][0]) == 1
        assert text.count("One of the special magic numbers for") > 100   # the haystack is distractor needles


def test_niah_deterministic_and_exact_at_1m(hf_tok):
    task = make_variant("niah_multivalue", memory_max_tokens=1 << 16)
    (a,) = list(task.generate([1 << 20], [0.25], 1, 3, hf_tok))
    (b,) = list(task.generate([1 << 20], [0.25], 1, 3, hf_tok))
    (c,) = list(task.generate([1 << 20], [0.25], 1, 4, hf_tok))
    ia, ib = a.prompt_ids(), b.prompt_ids()
    assert len(ia) == 1 << 20 and np.array_equal(ia, ib) and a.meta == b.meta
    assert a.meta["references"] != c.meta["references"] and not np.array_equal(ia[:5000], c.prompt_ids()[:5000])


def test_niah_bad_inputs():
    with pytest.raises(BadInputError, match="unknown RULER variant"):
        make_variant("niah_single_9")
    with pytest.raises(BadInputError, match="haystack"):
        make_variant("niah_single_1", haystack="web")
    task = get_task("niah_multiquery")
    with pytest.raises(DoesNotFitError, match="length >= "):
        list(task.generate([100], [0.5], 1, 0, ByteTokenizer()))
    with pytest.raises(BadInputError, match=r"outside \[0, 1\]"):
        task.generate([5000], [2.0], 1, 0, ByteTokenizer())
