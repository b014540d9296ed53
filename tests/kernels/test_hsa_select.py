"""Fused select_chunks (Triton) against the reference einsum + topk, interpreter on CPU and compiled on GPU."""
import pytest
import torch

from ramba.errors import BadInputError
from ramba.kernels.hsa import reference as ref
from ramba.kernels.hsa.select import select_chunks, select_launch
from ramba.kernels.testing import assert_topk_match, poison_outputs

# (B, T, Hkv, dr, C, K, S, q_offset, n_split): odd T, K not a power of two, fewer chunks than K, split ranges,
# a prefill continuing after q_offset, dr not a power of two
CPU_CASES = [
    pytest.param(1, 37, 1, 32, 20, 8, 4, 0, 1, id="prefill-T37"),
    pytest.param(2, 70, 2, 48, 50, 6, 2, 9, 1, id="B2-H2-K6-dr48"),
    pytest.param(1, 21, 1, 64, 300, 8, 16, 4000, 3, id="offset-split3"),
    pytest.param(1, 19, 2, 16, 3, 8, 4, 0, 1, id="C<K"),
    pytest.param(1, 5, 1, 32, 130, 16, 1, 100, 2, id="K16-S1-split2"),
    pytest.param(1, 9, 1, 16, 12, 1, 4, 0, 1, id="K1"),
    pytest.param(1, 5, 1, 16, 40, 4, 64, 2 ** 33 + 7, 1, id="position-past-2^32"),
]


@pytest.mark.parametrize("B,T,H,dr,C,K,S,q_offset,n_split", CPU_CASES)
def test_select_fp32(B, T, H, dr, C, K, S, q_offset, n_split):
    g = torch.Generator().manual_seed(B * 1000 + T)
    r = torch.randn(B, T, H, dr, generator=g)
    lmk = torch.randn(B, C, H, dr, generator=g)
    with poison_outputs():
        idx, sc = select_launch(r, lmk, K, S, q_offset, n_split=n_split)
    ri, rs = ref.select_chunks(r, lmk, K, S, q_offset)
    # fp32 dot products of length dr differ from einsum only by summation order (~1e-6 on O(1) scores)
    assert_topk_match("select", ri, rs, idx, sc, tol=1e-5)


def test_select_packed_key_merge(monkeypatch):
    # the alternative merge (packed int64 key tile, RAMBA_HSA_SEL_F32=0) must select exactly the same chunks
    monkeypatch.setenv("RAMBA_HSA_SEL_F32", "0")
    g = torch.Generator().manual_seed(5)
    r, lmk = torch.randn(1, 45, 2, 32, generator=g), torch.randn(1, 60, 2, 32, generator=g)
    idx, sc = select_launch(r, lmk, 6, 2, 7, n_split=2)
    ri, rs = ref.select_chunks(r, lmk, 6, 2, 7)
    assert_topk_match("select-packed", ri, rs, idx, sc, tol=1e-5)


def test_select_fp16():
    g = torch.Generator().manual_seed(7)
    r = torch.randn(2, 33, 1, 64, generator=g).half()
    lmk = torch.randn(2, 40, 1, 64, generator=g).half()
    idx, sc = select_chunks(r, lmk, 8, 4, q_offset=3)
    ri, rs = ref.select_chunks(r, lmk, 8, 4, 3)
    # fp16 products are exact in fp32; only accumulation order differs (~1e-6); near-ties allowed within 1e-4
    assert_topk_match("select-fp16", ri, rs, idx, sc, tol=1e-4)


def test_select_bad_input():
    r = torch.randn(1, 4, 1, 32)
    with pytest.raises(BadInputError, match="do not match"):
        select_chunks(r, torch.randn(1, 8, 2, 32), 4, 4)
    with pytest.raises(BadInputError, match="topk"):
        select_chunks(r, torch.randn(1, 8, 1, 32), 0, 4)


@pytest.mark.gpu
@pytest.mark.parametrize("merge_f32", ["1", "0"])
@pytest.mark.parametrize("T,H,dr,C,K,q_offset", [
    pytest.param(2048, 1, 1024, 40, 8, 0, id="prefill-2K-dr1024"),
    pytest.param(1000, 2, 256, 5000, 16, 320000, id="segment-after-320K"),
])
def test_select_gpu_bf16(T, H, dr, C, K, q_offset, merge_f32, monkeypatch):
    monkeypatch.setenv("RAMBA_HSA_SEL_F32", merge_f32)
    S = 64
    if q_offset == 0:
        C = T // S + 8
    g = torch.Generator().manual_seed(T)
    r = torch.randn(1, T, H, dr, generator=g).cuda().bfloat16()
    lmk = torch.randn(1, C, H, dr, generator=g).cuda().bfloat16()
    with poison_outputs():
        idx, sc = select_chunks(r, lmk, K, S, q_offset)
    ri, rs = ref.select_chunks(r, lmk, K, S, q_offset)
    # bf16 products are exact in fp32; scores differ by accumulation order only (~1e-5 at dr=1024)
    assert_topk_match("select-gpu", ri, rs, idx, sc, tol=2e-4)
