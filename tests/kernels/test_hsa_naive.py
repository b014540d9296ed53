"""Every HSA backend held to the independent float64 oracle `naive_hsa.py` (written from hsa-spec.md, sharing no
code with reference.py): selection, both fusions, sm_n, invalid and duplicate slots, forward and backward.

Backends: `reference.py` (the kernels' usual oracle), the model's memory-bounded reference forms in ramba/hsa.py,
and the Triton kernels (interpreter on CPU). Tolerance, unless a test says otherwise: FP32_TOL below.
"""
import functools

import pytest
import torch

from ramba.hsa import hsa_attend_gathered, rescore, select_chunks_bounded
from ramba.kernels.hsa import reference as ref
from ramba.kernels.hsa.attend import hsa_attend as tri_attend
from ramba.kernels.hsa.decode import hsa_attend_decode, select_chunks_decode
from ramba.kernels.hsa.select import select_launch
from ramba.kernels.testing import assert_close, assert_topk_match, poison_outputs

from hsa_cases import attend_inputs
from naive_hsa import naive_attend, naive_select, naive_weights

# fp32 backends vs the float64 oracle: fp32 rounding (u = 6e-8) through <= 64-term dot products, softmax sums and
# K-slot sums measures <= 4e-7 relative RMSE on these shapes (every output and gradient); 1e-5 leaves a 25x
# margin, while a slip in the formula (a scale, the stick's side, a mask) moves results by 1e-2 or more.
FP32_TOL = 1e-5

SELECT = {
    "reference": ref.select_chunks,
    "bounded": select_chunks_bounded,                                   # the model's "reference" backend
    "triton": lambda r, l, k, s, off: select_launch(r, l, k, s, off, n_split=1),
    "triton-split": lambda r, l, k, s, off: select_launch(r, l, k, s, off, n_split=3),   # partial top-k merge
}


def _reference_copy_path(*args, **kw):
    """The reference with its grouped short-context path off: the copy-the-chunks path long contexts take."""
    saved, ref.GROUPED_MAX_CHUNKS = ref.GROUPED_MAX_CHUNKS, -1
    try:
        return ref.hsa_attend(*args, **kw)
    finally:
        ref.GROUPED_MAX_CHUNKS = saved


ATTEND = {"reference": ref.hsa_attend, "reference-copy": _reference_copy_path, "gathered": hsa_attend_gathered,
          "triton": tri_attend}


@pytest.fixture
def small_blocks(monkeypatch):
    # the bounded select then merges its running top-k over many landmark blocks (the path ties must survive)
    monkeypatch.setattr("ramba.hsa.MAX_SCORE_ELEMS", 1)


# ---------------------------------------------------------------- selection

@pytest.mark.parametrize("impl", list(SELECT))
@pytest.mark.parametrize("B,T,H,dr,C,K,S,q_offset", [
    pytest.param(1, 23, 2, 32, 9, 4, 2, 0, id="prefill"),
    pytest.param(2, 6, 1, 16, 40, 5, 3, 100, id="offset-C>vis"),
    pytest.param(1, 9, 1, 16, 3, 6, 2, 0, id="C<K"),
])
def test_select_matches_naive(impl, B, T, H, dr, C, K, S, q_offset, small_blocks):
    g = torch.Generator().manual_seed(100 + T)
    r, lmk = torch.randn(B, T, H, dr, generator=g), torch.randn(B, C, H, dr, generator=g)
    ni, ns = naive_select(r, lmk, K, S, q_offset)
    with poison_outputs():
        idx, sc = SELECT[impl](r, lmk, K, S, q_offset)
    # fp32 scores of O(1) differ from float64 by ~1e-7; picks may differ only at near-ties inside 1e-5
    assert_topk_match(impl, ni, ns.float(), idx, sc, tol=1e-5)


def _tied_inputs(B=1, T=30, H=2, dr=16, C=14, zero_last=True):
    """Integer-valued r and landmarks: every product and sum is exact in fp32 (and fp64), so equal scores are
    bit-equal in every backend. Landmarks repeat 3 patterns (scores tie in groups); one query row is zero (all
    of its scores tie) when `zero_last`."""
    g = torch.Generator().manual_seed(7)
    r = torch.randint(1, 3, (B, T, H, dr), generator=g) * (2 * torch.randint(0, 2, (B, T, H, dr), generator=g) - 1)
    base = torch.randint(-2, 3, (3, dr), generator=g)
    lmk = base[torch.arange(C) % 3].expand(B, H, C, dr).permute(0, 2, 1, 3)         # [B, C, H, dr]
    if zero_last:
        r[:, T - 1] = 0
    return r.float().contiguous(), lmk.float().contiguous()


@pytest.mark.parametrize("impl", list(SELECT))
def test_select_ties_go_to_the_newest_chunk(impl, small_blocks):
    r, lmk = _tied_inputs()
    K, S = 4, 2
    ni, ns = naive_select(r, lmk, K, S)
    idx, sc = SELECT[impl](r, lmk, K, S, 0)
    assert torch.equal(idx, ni), f"{impl}: tie broken differently from 'newest chunk wins'"
    assert torch.equal(sc, ns.float())                                # exact: integer arithmetic
    # the zero query ties everywhere: it must hold the K newest visible chunks
    assert idx[0, -1, 0].tolist() == [13, 12, 11, 10]


def test_select_decode_ties_and_split():
    r, lmk = _tied_inputs(T=1, C=200, zero_last=False)
    pos = 2 * 150 + 1                                                 # 150 visible chunks of S = 2
    ni, ns = naive_select(r, lmk, 5, 2, pos)
    for q_off in (pos, torch.tensor([pos])):
        idx, sc = select_chunks_decode(r, lmk, 5, 2, q_off)
        assert torch.equal(idx, ni) and torch.equal(sc, ns.float())
        # and with the landmark ranges merged by the split path (what a GPU decode uses)
        idx, sc = select_launch(r, lmk, 5, 2, q_off, n_split=4)
        assert torch.equal(idx, ni) and torch.equal(sc, ns.float())


# ---------------------------------------------------------------- fusion weights

def test_chunk_weights_golden():
    ninf = float("-inf")
    s = torch.tensor([[0.0, 0.0, ninf, 0.0], [0.0, 3.0 ** 0.5, ninf, ninf], [ninf] * 4])
    # stick-breaking: sigma(0) = 1/2 of what is left, newest first; the invalid slot leaves the stick intact
    sb = ref.chunk_weights(s, "stick_breaking")
    assert torch.allclose(sb[0], torch.tensor([0.5, 0.25, 0.0, 0.125]), rtol=0, atol=1e-7)
    assert (sb[2] == 0).all()
    # softmax over the valid slots only: exp(0) : exp(ln 3) = 1 : 3
    sm = ref.chunk_weights(torch.tensor([[0.0, 1.0986123, ninf]]), "softmax")
    assert torch.allclose(sm, torch.tensor([[0.25, 0.75, 0.0]]), rtol=0, atol=1e-6)
    assert (ref.chunk_weights(s[2:], "softmax") == 0).all()          # no valid slot: all zero, not NaN


def _score_rows():
    """[12, 6] scores: all valid, a selector-style invalid suffix, all invalid, an invalid slot in the middle,
    and saturated values (|s| = 30) where sigmoid is 1 - 1e-13."""
    g = torch.Generator().manual_seed(11)
    s = torch.randn(12, 6, generator=g) * 2
    s[1, 4:] = s[2, 1:] = s[3, :] = float("-inf")
    s[4, 2] = s[5, 0] = float("-inf")
    s[6] = torch.tensor([30.0, -30.0, 5.0, -5.0, 30.0, 0.0])
    s[7, 3:] = float("-inf")
    return s


@pytest.mark.parametrize("fusion", ["stick_breaking", "softmax"])
def test_chunk_weights_match_naive_with_grads(fusion):
    s = _score_rows()
    up = torch.randn(s.shape, generator=torch.Generator().manual_seed(12))   # upstream gradient
    s32, s64 = s.clone().requires_grad_(), s.double().requires_grad_()
    w, wn = ref.chunk_weights(s32, fusion), naive_weights(s64, fusion)
    (w * up).sum().backward()
    (wn * up.double()).sum().backward()
    assert w.dtype == torch.float32
    assert_close("w", wn, w, FP32_TOL)
    assert_close("dw/ds", s64.grad, s32.grad, FP32_TOL)
    valid = torch.isfinite(s)
    assert (w[~valid] == 0).all() and (s32.grad[~valid] == 0).all()
    total = w.sum(-1)
    if fusion == "softmax":
        assert torch.allclose(total[valid.any(-1)], torch.ones(()), atol=1e-6)
    else:
        assert (total <= 1 + 1e-6).all()                              # the rest of the stick goes to "nothing"


# ---------------------------------------------------------------- attention

# (B, T, Hq, Hkv, d, S, K, C, sm_n): G 16 / 4 / 3, d 24 padded to 32, sm_n on and off
ATTEND_CASES = [
    pytest.param(1, 7, 16, 1, 32, 16, 3, 5, 0.0, id="G16-d32"),
    pytest.param(2, 5, 8, 2, 16, 16, 4, 6, 1.0, id="G4-B2-smn1"),
    pytest.param(1, 6, 3, 1, 24, 32, 3, 4, 1.0, id="G3-d24-S32-smn1"),
]


def _attend_case(B, T, Hq, Hkv, d, S, K, C, seed=0):
    """Random inputs whose slots include -1 padding, duplicates (from attend_inputs) and out-of-range ids
    (>= C, < -1), all of which must contribute nothing (docs/contracts.md)."""
    q, k, v, idx, w, do = attend_inputs(B, T, Hq, Hkv, d, S, K, C, torch.float32, seed=seed)
    idx[:, 1, :, -1] = C
    idx[:, 2, :, 0] = C + 3
    idx[:, 3, :, -1] = -2
    return q, k, v, idx, w, do


@functools.lru_cache(maxsize=None)
def _naive_attend_grads(case, seed=0):
    B, T, Hq, Hkv, d, S, K, C, sm_n = case
    q, k, v, idx, w, do = _attend_case(*case[:-1], seed=seed)
    leaves = [x.double().requires_grad_() for x in (q, k, v, w)]
    o = naive_attend(leaves[0], leaves[1], leaves[2], idx, leaves[3], S, sm_n=sm_n)
    o.backward(do.double())
    return (o.detach(), *(x.grad for x in leaves))


@pytest.mark.parametrize("impl", list(ATTEND))
@pytest.mark.parametrize("B,T,Hq,Hkv,d,S,K,C,sm_n", ATTEND_CASES)
def test_attend_matches_naive(impl, B, T, Hq, Hkv, d, S, K, C, sm_n):
    case = (B, T, Hq, Hkv, d, S, K, C, sm_n)
    q, k, v, idx, w, do = _attend_case(*case[:-1])
    leaves = [x.clone().requires_grad_() for x in (q, k, v, w)]
    with poison_outputs():
        o = ATTEND[impl](leaves[0], leaves[1], leaves[2], idx, leaves[3], S, sm_n=sm_n)
        o.backward(do)
    got = (o, *(x.grad for x in leaves))
    for name, a, b in zip(("o", "dq", "dk", "dv", "dw"), _naive_attend_grads(case), got):
        assert_close(f"{impl}-{name}", a, b, FP32_TOL)
    bad = (idx < 0) | (idx >= C)
    assert (got[4][bad] == 0).all(), "invalid slots must get no weight gradient"
    assert (o[:, 0] == 0).all(), "a token with no valid slot outputs exactly 0"


def test_attend_decode_matches_naive():
    q, k, v, idx, w, _ = attend_inputs(2, 1, 8, 2, 32, 16, 5, 7, torch.float32, seed=9)
    idx[..., :] = torch.tensor([9, 6, 6, 2, -4])                      # out of range, duplicate, valid, invalid
    with poison_outputs():
        o = hsa_attend_decode(q, k, v, idx, w, 16, sm_n=1.0)
    assert_close("decode-o", naive_attend(q, k, v, idx, w, 16, sm_n=1.0), o, FP32_TOL)


def test_rescore_treats_out_of_range_ids_as_invalid():
    # the model's differentiable rescoring (ramba/hsa.py) follows the same contract: ids outside [0, C) -> -inf
    g = torch.Generator().manual_seed(5)
    r, lmk = torch.randn(1, 2, 1, 16, generator=g), torch.randn(1, 3, 1, 16, generator=g)
    idx = torch.tensor([[[[2, 0, 3]], [[-4, 1, -1]]]])                 # [1, 2, 1, 3]
    s = rescore(r, lmk, idx)
    assert torch.isinf(s[idx < 0]).all() and torch.isinf(s[0, 0, 0, 2])
    _, ns = naive_select(r, lmk, 3, 1, q_offset=3)                     # position 3 sees chunks 2, 1, 0
    assert torch.allclose(s[0, 0, 0, :2], ns[0, 0, 0, [0, 2]].float(), rtol=0, atol=1e-6)


# ---------------------------------------------------------------- the whole pipeline

PIPELINE = (1, 83, 4, 2, 16, 16, 3)       # B, T, Hq, Hkv, d, S, K: 5 complete chunks, early tokens see < K


def _pipeline_inputs():
    B, T, Hq, Hkv, d, S, K = PIPELINE
    g = torch.Generator().manual_seed(21)
    C = T // S
    r, lmk = torch.randn(B, T, Hkv, 16, generator=g), torch.randn(B, C, Hkv, 16, generator=g)
    q = torch.randn(B, T, Hq, d, generator=g)
    k, v = torch.randn(B, C * S, Hkv, d, generator=g), torch.randn(B, C * S, Hkv, d, generator=g)
    do = torch.randn(B, T, Hq, d, generator=g)
    return r, lmk, q, k, v, do


@functools.lru_cache(maxsize=None)
def _naive_pipeline(fusion, sm_n):
    *inputs, do = _pipeline_inputs()
    leaves = [x.double().requires_grad_() for x in inputs]
    r, lmk, q, k, v = leaves
    _, _, _, _, _, S, K = PIPELINE
    idx, s = naive_select(r, lmk, K, S)
    o = naive_attend(q, k, v, idx, naive_weights(s, fusion), S, sm_n=sm_n)
    o.backward(do.double())
    return idx, o.detach(), [x.grad for x in leaves]


def _backend_pipeline(backend, r, lmk, q, k, v, fusion, sm_n):
    S, K = PIPELINE[5], PIPELINE[6]
    if backend == "reference":                        # reference.py alone; its scores carry the gradient
        idx, s = ref.select_chunks(r, lmk, K, S)
        return idx, ref.hsa_attend(q, k, v, idx, ref.chunk_weights(s, fusion), S, sm_n=sm_n)
    # the model's two backends (ramba/ops.py): selection without gradient, then differentiable rescoring
    select, attend = ((select_chunks_bounded, hsa_attend_gathered) if backend == "model-reference"
                      else (lambda *a: select_launch(*a, n_split=1), tri_attend))
    idx, _ = select(r.detach(), lmk.detach(), K, S, 0)
    return idx, attend(q, k, v, idx, ref.chunk_weights(rescore(r, lmk, idx), fusion), S, sm_n=sm_n)


@pytest.mark.parametrize("backend", ["reference", "model-reference", "triton"])
@pytest.mark.parametrize("fusion,sm_n", [("stick_breaking", 0.0), ("softmax", 1.0)])
def test_pipeline_end_to_end(backend, fusion, sm_n):
    """select -> fusion weights -> attend, output and gradients to r, landmarks, q, k, v (the scores reach
    r and landmarks only through the weights)."""
    n_idx, n_o, n_grads = _naive_pipeline(fusion, sm_n)
    *inputs, do = _pipeline_inputs()
    leaves = [x.clone().requires_grad_() for x in inputs]
    idx, o = _backend_pipeline(backend, *leaves, fusion, sm_n)
    o.backward(do)
    assert torch.equal(idx, n_idx)                    # fixed seed: no near-tie among these scores
    assert_close("o", n_o, o, FP32_TOL)
    for name, a, x in zip(("dr", "dlmk", "dq", "dk", "dv"), n_grads, leaves):
        assert_close(f"{backend}-{name}", a, x.grad, FP32_TOL)
