"""The shipped RAMba's pass-key recall does not depend on where the prompt length falls on the Mamba reset grid:
lengths = 0, 1 and S-1 mod mamba_segment (S) all retrieve, because the grid is anchored to the prompt's end
(RambaConfig.reset_tail). The old absolute grid fails at the same lengths, so this test can fail.
The full sweep (64 consecutive lengths from 3808 and from 4128) is benchmarks/generalization/length_sweep.py."""
from pathlib import Path

import pytest
import torch

CKPT = Path(__file__).resolve().parents[2] / "checkpoints" / "ramba-tiny"
SEED = 20261201        # fresh: training never draws from PasskeyTask.generate; recorded sweeps used 23 and 29

pytestmark = pytest.mark.skipif(not (CKPT / "model.safetensors").is_file(), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def model():
    from ramba.train.checkpoint import load_model_dir
    return load_model_dir(CKPT, device="cpu").eval()


def _lengths(seg: int) -> list[int]:
    base = (4096 // seg) * seg                     # a multiple of the segment near the training length
    return [base - seg, base - seg + 1, base - 1, base, base + 1, base + seg - 1]   # = 0, 1, S-1 mod S


def _accuracy(model, lengths):
    from ramba.train.evaluate import passkey_eval
    recs = passkey_eval(model, lengths, [0.25, 0.75], 1, seed=SEED, device=torch.device("cpu"), batch_size=2)
    return recs, sum(r["correct"] for r in recs) / len(recs)


def test_residues_0_1_and_s_minus_1_retrieve(model):
    seg = model.cfg.mamba_segment
    assert seg and model.cfg.reset_tail, "the shipped model anchors its reset grid (reset_tail)"
    lengths = _lengths(seg)
    assert sorted({L % seg for L in lengths}) == [0, 1, seg - 1]
    recs, acc = _accuracy(model, lengths)
    assert acc == 1.0, "misses: " + ", ".join(f"L={r['length']} d={r['depth']} {r['answer']!r}->{r['prediction']!r}"
                                              for r in recs if not r["correct"])


def test_absolute_grid_fails_there(model):
    """Control: with the old absolute grid the last window before the answer holds 0 or 1 tokens at these
    lengths, and recall collapses; the anchored grid is what makes the test above pass."""
    seg = model.cfg.mamba_segment
    absolute = type(model)(model.cfg.replace(reset_tail=None))
    absolute.load_state_dict(model.state_dict())
    lengths = [L for L in _lengths(seg) if L % seg in (0, 1)]
    _, acc = _accuracy(absolute.eval(), lengths)
    assert acc <= 0.5, f"absolute grid scored {acc:.2f} at lengths = 0/1 mod {seg}: the control does not discriminate"
