"""Triton hsa_attend (forward + backward) against the PyTorch reference, under the interpreter on CPU (fp32, fp16)
and compiled on a GPU (bf16, fp32, larger shapes)."""
import pytest
import torch

from ramba.errors import BadInputError
from ramba.kernels.hsa import reference as ref
from ramba.kernels.hsa.attend import build_chunk_lists, hsa_attend
from ramba.kernels.testing import assert_close, assert_within_torch_error, poison_outputs

from hsa_cases import attend_inputs, run_with_grads
from naive_hsa import naive_attend

NAMES = ("o", "dq", "dk", "dv", "dw")

# (B, T, Hq, Hkv, d, S, K, C, sm_n): G in {16, 4, 1, 3}, odd T, head dims 16..64 incl. 24 (padded), S 16..48
CPU_CASES = [
    pytest.param(1, 11, 16, 1, 32, 32, 3, 6, 0.0, id="G16-T11-d32-S32"),
    pytest.param(2, 13, 8, 2, 16, 16, 4, 9, 1.0, id="G4-T13-d16-S16-smn1"),
    pytest.param(1, 17, 2, 2, 24, 48, 3, 5, 0.0, id="G1-T17-d24-S48"),
    pytest.param(1, 9, 3, 1, 64, 16, 2, 4, 1.0, id="G3-T9-d64-S16-smn1"),
    pytest.param(1, 6, 32, 2, 128, 64, 5, 7, 0.0, id="G16-T6-d128-S64-K5"),
]


def _compare(case_args, dtype, device, ratio):
    B, T, Hq, Hkv, d, S, K, C, sm_n = case_args
    q, k, v, idx, w, do = attend_inputs(B, T, Hq, Hkv, d, S, K, C, dtype, device)
    expect = run_with_grads(ref.hsa_attend, q, k, v, idx, w, do, S, sm_n)
    with poison_outputs():
        got = run_with_grads(hsa_attend, q, k, v, idx, w, do, S, sm_n)
    for name, a, b in zip(NAMES, expect, got):
        assert b.dtype == a.dtype, f"{name}: dtype {b.dtype} != {a.dtype}"
        assert_close(name, a.float(), b.float(), ratio)
    # invalid slots carry no gradient and tokens with no valid slot output exactly 0
    assert (got[4][idx < 0] == 0).all()
    assert (got[0][:, 0] == 0).all()


@pytest.mark.parametrize("B,T,Hq,Hkv,d,S,K,C,sm_n", CPU_CASES)
def test_attend_fp32(B, T, Hq, Hkv, d, S, K, C, sm_n):
    # fp32 everywhere: only summation order differs from the reference -> ~1e-7 relative; 1e-5 leaves margin.
    _compare((B, T, Hq, Hkv, d, S, K, C, sm_n), torch.float32, "cpu", 1e-5)


def test_attend_fp32_long_lists_split(monkeypatch):
    # chunk lists longer than a segment are split over several programs whose partial dk/dv are added
    # atomically; tiny segments (3 entries, 2 per step) exercise that path on a small problem
    monkeypatch.setenv("RAMBA_HSA_SEG", "3")
    monkeypatch.setenv("RAMBA_HSA_BLOCK_E", "2")
    _compare((1, 21, 4, 1, 16, 16, 4, 3, 0.0), torch.float32, "cpu", 1e-5)


def test_attend_fp16():
    # flash-attention's rule: against an oracle (the independent float64 naive_hsa on the same fp16 values), the
    # kernel's error may be at most 2x the error of the PyTorch reference fed the same fp16 inputs (measured:
    # kernel ~2.7e-4 relative, reference ~2.0e-4).
    args = (1, 15, 8, 2, 32, 16, 4, 6, 0.0)
    q, k, v, idx, w, do = attend_inputs(*args[:-1], torch.float16, "cpu")
    S, sm_n = args[5], args[8]
    oracle = run_with_grads(naive_attend, *(x.double() for x in (q, k, v)), idx, w.double(), do.double(), S, sm_n)
    torch_lowp = run_with_grads(ref.hsa_attend, q, k, v, idx, w, do, S, sm_n)
    with poison_outputs():
        got = run_with_grads(hsa_attend, q, k, v, idx, w, do, S, sm_n)
    for name, a, b, c in zip(NAMES, oracle, got, torch_lowp):
        assert b.dtype == c.dtype, f"{name}: dtype {b.dtype} != {c.dtype}"
        assert_within_torch_error(name, a, b, c, factor=2.0, floor=1e-6)


def test_chunk_lists_cover_every_valid_slot():
    idx = torch.tensor([[[[3, 1, -1]], [[3, 3, 0]]]])           # [1, 2, 1, 3]: a duplicate and an invalid slot
    perm, offsets, seg_key, seg_first = build_chunk_lists(idx, num_chunks=4, seg=2)
    counts = (offsets[1:] - offsets[:-1]).tolist()
    assert counts == [1, 1, 0, 3]                                # chunk 3 selected three times
    flat = idx.reshape(-1)
    for c in range(4):
        assert sorted(flat[perm[offsets[c]:offsets[c + 1]]].tolist()) == [c] * counts[c]
    live = seg_key[seg_key >= 0].tolist()
    assert live == [0, 1, 3, 3]                                  # chunk 3's list is split into 2 segments
    assert seg_first[3].item() == 2


def test_attend_bad_input():
    q, k, v, idx, w, _ = attend_inputs(1, 4, 4, 1, 16, 16, 2, 3, torch.float32)
    with pytest.raises(BadInputError, match="multiple of KV heads"):
        hsa_attend(q[:, :, :3], k[:, :, :1].expand(-1, -1, 2, -1), v[:, :, :1].expand(-1, -1, 2, -1),
                   idx.expand(-1, -1, 2, -1), w.expand(-1, -1, 2, -1), 16)
    with pytest.raises(BadInputError, match="chunk_size"):
        hsa_attend(q, k, v, idx, w, 8)
    with pytest.raises(BadInputError, match="share a dtype"):
        hsa_attend(q, k.half(), v, idx, w, 16)


GPU_CASES = [
    pytest.param(2, 1031, 16, 1, 64, 64, 8, 40, 0.0, id="shapeA-G16-T1031"),
    pytest.param(1, 517, 32, 2, 128, 64, 16, 20, 1.0, id="shapeB-G16-T517-smn1"),
    pytest.param(1, 700, 16, 4, 64, 32, 8, 30, 0.0, id="G4-T700-S32"),
    pytest.param(2, 333, 2, 2, 96, 64, 4, 12, 0.0, id="G1-T333-d96"),
]


@pytest.mark.gpu
@pytest.mark.parametrize("B,T,Hq,Hkv,d,S,K,C,sm_n", GPU_CASES)
def test_attend_gpu_bf16(B, T, Hq, Hkv, d, S, K, C, sm_n):
    # bf16 operands (unit roundoff 3.9e-3) with p and ds rounded to bf16 before the MMA: relative RMSE lands
    # between 1e-3 and 1e-2 (METHOD.md); 1.5e-2 allows for long sums over 16 slots x 64 keys.
    _compare((B, T, Hq, Hkv, d, S, K, C, sm_n), torch.bfloat16, "cuda", 1.5e-2)


@pytest.mark.gpu
def test_attend_gpu_fp32_ieee():
    # fp32 inputs use input_precision="ieee" (no TF32), so the kernel matches the fp32 reference to rounding.
    _compare((1, 257, 16, 1, 64, 64, 8, 10, 0.0), torch.float32, "cuda", 1e-5)


@pytest.mark.gpu
def test_attend_gpu_hot_chunk_long_list():
    # every token selects chunk 0: one chunk's list (T x K entries) spans many segments, summed atomically
    B, T, Hq, Hkv, d, S, K, C = 1, 3000, 16, 1, 64, 64, 4, 8
    q, k, v, idx, w, do = attend_inputs(B, T, Hq, Hkv, d, S, K, C, torch.bfloat16, "cuda")
    idx[..., 0] = 0
    idx[:, 0] = -1
    expect = run_with_grads(ref.hsa_attend, q, k, v, idx, w, do, S, 0.0)
    got = run_with_grads(hsa_attend, q, k, v, idx, w, do, S, 0.0)
    for name, a, b in zip(NAMES, expect, got):
        assert_close(name, a.float(), b.float(), 1.5e-2)


def test_attend_empty_memory():
    # before the first chunk completes the memory is empty: output 0, zero gradients, no launch on empty K/V
    q, _, _, idx, w, do = attend_inputs(1, 5, 4, 1, 16, 16, 2, 3, torch.float32)
    k = torch.randn(1, 0, 1, 16)
    got = run_with_grads(hsa_attend, q, k, k.clone(), torch.full_like(idx, -1), w, do, 16, 0.0)
    assert (got[0] == 0).all() and (got[1] == 0).all() and got[2].shape == k.shape and (got[4] == 0).all()


@pytest.mark.gpu
def test_attend_gpu_int64_offsets():
    # K/V with more than 2^31 elements (4 GiB each in bf16): chunk row * stride overflows int32, so this fails
    # unless the kernels use int64 offsets. The reference runs on a compact copy of the selected chunks.
    S, d, Hq, K, T = 64, 64, 16, 4, 37
    C = 2 ** 31 // (S * d) + 64
    g = torch.Generator(device="cuda").manual_seed(11)
    k = torch.randn(1, C * S, 1, d, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(1, C * S, 1, d, device="cuda", dtype=torch.bfloat16, generator=g)
    q = torch.randn(1, T, Hq, d, device="cuda", dtype=torch.bfloat16, generator=g)
    do = torch.randn(1, T, Hq, d, device="cuda", dtype=torch.bfloat16, generator=g)
    chunks = torch.tensor([3, C - 64, C - 7, C - 1], device="cuda")            # sorted ascending
    pick = torch.randint(0, 4, (1, T, 1, K), device="cuda", generator=g)
    idx = chunks[pick].sort(dim=-1, descending=True).values
    w = torch.rand(1, T, 1, K, device="cuda", generator=g)
    small = torch.searchsorted(chunks, idx)                                       # same picks, compact ids
    k_small = k.view(1, C, S, 1, d)[:, chunks].reshape(1, 4 * S, 1, d)
    v_small = v.view(1, C, S, 1, d)[:, chunks].reshape(1, 4 * S, 1, d)
    expect = run_with_grads(ref.hsa_attend, q, k_small, v_small, small, w, do, S, 0.0)
    got = run_with_grads(hsa_attend, q, k, v, idx, w, do, S, 0.0)
    for name, i in (("o", 0), ("dq", 1), ("dw", 4)):
        assert_close(name, expect[i].float(), got[i].float(), 1.5e-2)              # bf16 (see above)
    for name, i, ref_small in (("dk", 2, expect[2]), ("dv", 3, expect[3])):
        full = got[i].view(1, C, S, 1, d)
        assert_close(name, ref_small.view(1, 4, S, 1, d).float(), full[:, chunks].float(), 1.5e-2)
        # nothing written outside the selected chunks
        assert torch.allclose(full.float().norm(), full[:, chunks].float().norm(), rtol=1e-3)
