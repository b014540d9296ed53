"""Held-out RULER variants: exact length, a wording from the held-out bank (different from the standard one and
drawn per sample, reproducibly), and the answer's value really in the needle."""
import numpy as np
import pytest

from ramba.tasks import get_task
from ramba.tasks.template_bank import HELDOUT2_LABELS, HELDOUT_LABELS
from ramba.tasks.tokenizers import ByteTokenizer

TOK = ByteTokenizer()
HELDOUT = ["heldout_niah_single_2", "heldout_niah_multikey_1", "heldout_niah_multivalue", "heldout_niah_multiquery",
           "heldout_niah_single_3", "heldout_vt", "heldout_filler_niah_single", "heldout_filler_niah_multikey"]
HELDOUT2 = ["heldout2_niah_single_2", "heldout2_niah_multikey_1", "heldout2_niah_multivalue", "heldout2_niah_multiquery",
            "heldout2_niah_single_3", "heldout2_vt"]


def _prompt(s) -> str:
    return TOK.decode(np.concatenate(list(s.prompt_chunks())).tolist())


@pytest.mark.parametrize("name", HELDOUT + HELDOUT2)
def test_exact_length_and_answer_in_prompt(name):
    for L in (1024, 3000):
        s = next(iter(get_task(name).generate([L], [0.3], 1, 11, TOK)))
        text = _prompt(s)
        assert len(text.encode()) == L == s.prompt_length
        for ref in s.meta["references"]:
            assert ref in text


@pytest.mark.parametrize("name", [n for n in HELDOUT + HELDOUT2 if "filler" not in n and not n.endswith("_vt")])
def test_wording_is_heldout_and_not_standard(name):
    own, other = (HELDOUT2_LABELS, HELDOUT_LABELS) if name.startswith("heldout2") else (HELDOUT_LABELS, HELDOUT2_LABELS)
    labels = [lab.split(" {")[0] for lab in own]
    seen = set()
    for i in range(6):
        text = _prompt(get_task(name).make_sample(2048, 0.5, 5, i, TOK))
        assert "special magic" not in text
        found = [lab for lab in labels if lab in text]
        assert found, "no held-out label in the prompt"
        assert not any(lab.split(" {")[0] in text for lab in other), "the other held-out bank's label"
        seen.update(found)
    assert len(seen) > 1, "the held-out wording should vary across samples"
    a = _prompt(get_task(name).make_sample(2048, 0.5, 5, 0, TOK))
    assert a == _prompt(get_task(name).make_sample(2048, 0.5, 5, 0, TOK))   # reproducible


def test_heldout_filler_is_not_the_standard_haystack():
    std = _prompt(get_task("niah_single_2").make_sample(2048, 0.5, 5, 0, TOK))
    held = _prompt(get_task("heldout_filler_niah_single").make_sample(2048, 0.5, 5, 0, TOK))
    assert get_task("heldout_filler_niah_single").config()["haystack"] == "zipf"
    assert std[200:600] != held[200:600]


def test_heldout_config_differs_from_standard():
    """The template set is part of the config (cache key and run id), so held-out prompts never reuse cached
    standard ones."""
    assert get_task("heldout_niah_single_2").config() != get_task("niah_single_2").config()
    assert get_task("heldout2_niah_single_2").config() != get_task("heldout_niah_single_2").config()


def test_heldout2_vt_uses_its_own_wording():
    text = _prompt(get_task("heldout2_vt").make_sample(2048, 0.5, 5, 0, TOK))
    assert " Put " in text and "in the end" in text and "Variable " not in text
