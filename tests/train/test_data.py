"""Training rows: answers are copies of their recorded source bytes, tails stay inside one reset window,
configs refuse bad input with a project error."""
import numpy as np
import pytest

from ramba.errors import BadInputError
from ramba.train.config import config_from_dict
from ramba.train.data import ROW_KINDS, RowSampler

SEG = 320
RNG_SEED = 20260314          # fixed seeds (sampler and row draws): a failure must reproduce


@pytest.fixture(scope="module")
def sampler():
    kinds = {k: 1.0 for k in ROW_KINDS if k != "text"}
    return RowSampler(kinds, seed=20260313, segment=SEG, pool_bytes=1 << 18)


@pytest.mark.parametrize("kind", [k for k in ROW_KINDS if k != "text"])
@pytest.mark.parametrize("length", [512, 1024, 4096])
def test_answers_copy_their_source(sampler, kind, length):
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        r = sampler.row(rng, length, kind)
        assert r.data.shape == (length + 1,) and r.answer.shape == r.source.shape == (length,)
        t = np.nonzero(r.answer)[0]
        assert len(t) > 0
        has = r.source[t] >= 0
        assert has.any()
        # target t predicts byte t + 1, which must equal the byte at its source position, strictly earlier
        assert np.array_equal(r.data[t[has] + 1], r.data[r.source[t[has]]])
        assert (r.source[t[has]] < t[has]).all()
        # the whole question + answer sits in one Mamba reset window
        assert t.min() // SEG == (t.max() + 1) // SEG


def test_passkey_uses_the_eval_template_half_the_time(sampler):
    rng = np.random.default_rng(RNG_SEED)
    hits = sum(b"Remember it." in sampler.row(rng, 1024, "passkey").data.tobytes() for _ in range(200))
    assert 60 < hits < 160


def test_batch_shapes_and_shift(sampler):
    rng = np.random.default_rng(RNG_SEED)
    b = sampler.batch(rng, 3, 512)
    assert b.ids.shape == b.targets.shape == b.answer.shape == (3, 512)
    assert np.array_equal(b.ids[:, 1:].numpy(), b.targets[:, :-1].numpy())


def test_bad_mix_and_config_raise():
    with pytest.raises(BadInputError):
        RowSampler({"nonsense": 1.0}, seed=0, pool_bytes=1 << 16)
    with pytest.raises(BadInputError):
        RowSampler({"text": 1.0}, seed=0, pool_bytes=1 << 16)
    with pytest.raises(BadInputError):
        config_from_dict({"name": "x", "optimiser": {}})
    with pytest.raises(BadInputError):
        config_from_dict({"curriculum": [{"until": 0.5, "length": 64, "batch": 2},
                                         {"until": 0.4, "length": 64, "batch": 2}]})


@pytest.mark.parametrize("phase", [1, 100, SEG - 1])
@pytest.mark.parametrize("kind", ["passkey", "mqar", "ruler_niah", "ruler_vt", "copy"])
def test_tails_stay_in_one_window_of_a_shifted_grid(sampler, kind, phase):
    """With resets at p % SEG == phase (a random phase per training step), the question + answer still sit in
    one reset window: windows are multiples of SEG in coordinates shifted by (SEG - phase) % SEG."""
    rng = np.random.default_rng(RNG_SEED + phase)
    shift = (SEG - phase) % SEG
    sampler.phase = phase
    try:
        for _ in range(20):
            t = np.nonzero(sampler.row(rng, 2048, kind).answer)[0]
            assert (t.min() + shift) // SEG == (t.max() + 1 + shift) // SEG
    finally:
        sampler.phase = 0
