"""RULER-family training rows: they follow the evaluation's answer format, and the held-out wordings and
fillers of ramba.tasks.template_bank never appear in them (so held-out results measure generalisation)."""
import re

import numpy as np
import pytest

from ramba.errors import BadInputError
from ramba.tasks.template_bank import HELDOUT2_LABELS, HELDOUT_LABELS, heldout_phrases
from ramba.train.data import RowSampler
from ramba.train.ruler_rows import ruler_niah_row

RNG_SEED = 20261201


@pytest.fixture(scope="module")
def sampler():
    return RowSampler({"ruler_niah": 1.0, "ruler_vt": 1.0, "passkey": 0.3, "mqar": 0.3, "copy": 0.3}, seed=7,
                      segment=512, pool_bytes=1 << 18, exclude_fillers=("task_zipf", "letter_words"))


@pytest.mark.parametrize("bank", [1, 2, 3, 4, 5])
def test_no_heldout_wording_or_filler_in_training_rows(sampler, bank):
    rng = np.random.default_rng(RNG_SEED + bank)
    sampler.kind_args = {"ruler_niah": {"bank": bank}, "ruler_vt": {"bank": bank}}
    phrases = [p.encode() for p in heldout_phrases()]
    labels = [lab.split(" {")[0].encode() for lab in HELDOUT_LABELS + HELDOUT2_LABELS]
    try:
        for _ in range(150):
            data = sampler.row(rng, 2048).data.tobytes()
            leaked = [p for p in phrases + labels if p in data]
            assert not leaked, f"held-out wording {leaked} in a training row"
    finally:
        sampler.kind_args = {}
    assert "task_zipf" not in sampler.pools.pools and "letter_words" not in sampler.pools.pools


def test_heldout_phrases_do_occur_in_heldout_tasks():
    """Control for the test above: the phrases it looks for are really in the held-out evaluation prompts."""
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    tok = ByteTokenizer()
    phrases = heldout_phrases()
    for name in ("heldout_niah_single_2", "heldout_niah_multiquery", "heldout_vt", "heldout2_niah_single_2",
                 "heldout2_niah_multiquery", "heldout2_vt"):
        s = next(iter(get_task(name).generate([1024], [0.5], 1, 3, tok)))
        text = tok.decode(np.concatenate(list(s.prompt_chunks())).tolist())
        assert any(p in text for p in phrases), name


@pytest.mark.parametrize("mode", ["single", "multikey", "multivalue", "multiquery"])
def test_niah_answers_in_the_evaluation_format(sampler, mode):
    """Answer bytes = ' ' + ', '.join(values) + '.', the values in the order RULER's references are asked."""
    rng = np.random.default_rng(RNG_SEED)
    value = r"(\d{7}|[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
    pattern = re.compile(rf"^ {value}(, {value})*\.$")
    many = 0
    for _ in range(30):
        r = ruler_niah_row(rng, sampler.pools, 2048, segment=512, mode=mode)
        t = np.nonzero(r.answer)[0]
        answer = r.data[t + 1].tobytes().decode()
        assert pattern.match(answer), answer
        many += ", " in answer
    assert (many > 0) == (mode in ("multivalue", "multiquery"))


def test_vt_answer_lists_the_chain(sampler):
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        r = sampler.row(rng, 2048, "ruler_vt")
        t = np.nonzero(r.answer)[0]
        answer = r.data[t + 1].tobytes().decode()
        assert re.fullmatch(r"( [A-Z]{5})+\.", answer), answer


def test_unknown_excluded_filler_is_an_error():
    with pytest.raises(BadInputError, match="exclude_fillers"):
        RowSampler({"passkey": 1.0}, seed=0, pool_bytes=1 << 16, exclude_fillers=("no_such_pool",))
