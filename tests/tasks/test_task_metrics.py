"""Golden cases for the metric semantics (RULER scripts/eval/synthetic/constants.py), plus randomized checks."""
import numpy as np
import pytest

from ramba.errors import BadInputError
from ramba.tasks.metrics import first_digit_run, string_match_all, string_match_part, teacher_forced_match


def test_string_match_golden():
    preds = ["The values are 123 and 456.", "I do not know", "only 789 here"]
    refs = [["123", "456"], ["111"], ["789", "000"]]
    # all: mean of the fraction found per sample = (1 + 0 + 1/2) / 3
    assert string_match_all(preds, refs) == pytest.approx(100 * 1.5 / 3)
    # part: 1 if ANY reference is found = (1 + 0 + 1) / 3 (lm-eval's port would give 1/2 for the last: a drift)
    assert string_match_part(preds, refs) == pytest.approx(100 * 2 / 3)
    # case-insensitive substring match, leading/trailing whitespace ignored
    assert string_match_all(["  Brealful-STOORMENT\n"], [["brealful-stoorment"]]) == 100.0
    # RULER turns control characters into newlines before matching: a reference split by one is not found
    assert string_match_all(["12\x0034"], [["1234"]]) == 0.0
    assert string_match_all(["12\x0034"], [["12", "34"]]) == 100.0


def test_string_match_random():
    rng = np.random.default_rng(41)
    preds, refs, want_all, want_part = [], [], [], []
    for _ in range(50):
        n = int(rng.integers(1, 5))
        ref = [f"v{int(x)}" + "x" * 3 for x in rng.integers(10**5, 10**6, size=n)]
        keep = rng.random(n) < 0.5
        filler = "".join(rng.choice(list("abc ,.;"), size=20))
        preds.append(filler + " ".join(r.upper() for r, k in zip(ref, keep) if k) + filler)
        refs.append(ref)
        want_all.append(keep.mean())
        want_part.append(float(keep.any()))
    assert string_match_all(preds, refs) == pytest.approx(100 * np.mean(want_all))
    assert string_match_part(preds, refs) == pytest.approx(100 * np.mean(want_part))


def test_string_match_bad_inputs():
    with pytest.raises(BadInputError):
        string_match_all([], [])
    with pytest.raises(BadInputError):
        string_match_all(["a"], [["a"], ["b"]])
    with pytest.raises(BadInputError):
        string_match_part("abc", [["a"]])
    with pytest.raises(BadInputError):
        string_match_part(["abc"], ["a"])          # references must be a list per sample


def test_first_digit_run_and_teacher_forced():
    assert first_digit_run(" 071432 and 99") == "071432"
    assert first_digit_run("the key: 5-4") == "5"
    assert first_digit_run("no digits") is None and first_digit_run("") is None
    assert first_digit_run("\u0663\u0664 then 12") == "12"      # only ASCII digits count
    rng = np.random.default_rng(42)
    gold = rng.integers(1, 50_000, size=7).tolist()
    assert teacher_forced_match(gold, gold) == (True, 1.0)
    bad = list(gold)
    bad[3] += 1
    assert teacher_forced_match(bad, gold) == (False, pytest.approx(6 / 7))
    with pytest.raises(BadInputError):
        teacher_forced_match(gold[:-1], gold)
