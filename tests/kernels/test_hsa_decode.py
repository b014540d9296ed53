"""Decode kernels (T == 1): landmark scan + top-k and single-token HSA, incl. a run-time q_offset tensor."""
import pytest
import torch

from ramba.errors import BadInputError
from ramba.kernels.hsa import reference as ref
from ramba.kernels.hsa.decode import hsa_attend_decode, select_chunks_decode
from ramba.kernels.testing import assert_close, assert_topk_match, poison_outputs

from hsa_cases import attend_inputs


@pytest.mark.parametrize("as_tensor", [False, True])
def test_select_decode(as_tensor):
    g = torch.Generator().manual_seed(3)
    r = torch.randn(2, 1, 2, 32, generator=g)
    lmk = torch.randn(2, 700, 2, 32, generator=g)          # capacity 700, only 500 visible at position 2000
    pos = 2000
    q_offset = torch.tensor([pos]) if as_tensor else pos
    with poison_outputs():
        idx, sc = select_chunks_decode(r, lmk, 8, 4, q_offset)
    ri, rs = ref.select_chunks(r, lmk, 8, 4, pos)
    assert_topk_match("decode-select", ri, rs, idx, sc, tol=1e-5)   # fp32: summation order only
    assert idx.max() < 500


@pytest.mark.parametrize("Hq,Hkv", [(16, 1), (4, 2)])
def test_attend_decode(Hq, Hkv):
    q, k, v, idx, w, _ = attend_inputs(2, 1, Hq, Hkv, 32, 16, 4, 9, torch.float32, seed=5)
    idx[:] = torch.tensor([8, 8, 3, -1])                    # the generator's row 0 is all-invalid; use real slots
    with poison_outputs():
        o = hsa_attend_decode(q, k, v, idx, w, 16)
    assert_close("decode-o", ref.hsa_attend(q, k, v, idx, w, 16), o, 1e-5)   # fp32: summation order only


def test_decode_rejects_prefill_shapes():
    with pytest.raises(BadInputError, match=r"\[B, 1"):
        select_chunks_decode(torch.randn(1, 2, 1, 32), torch.randn(1, 4, 1, 32), 2, 4)


@pytest.mark.gpu
def test_decode_gpu_large_and_cuda_graph():
    torch.manual_seed(0)
    C, dr, S, K = 200_000, 1024, 64, 8
    r = torch.randn(1, 1, 1, dr, device="cuda").bfloat16()
    lmk = torch.randn(1, C, 1, dr, device="cuda").bfloat16()
    q = torch.randn(1, 1, 16, 64, device="cuda").bfloat16()
    k = torch.randn(1, C * S, 1, 64, device="cuda").bfloat16()
    v = torch.randn_like(k)
    pos = torch.tensor([150_000 * S + 5], device="cuda")

    def step():
        idx, sc = select_chunks_decode(r, lmk, K, S, pos)
        return idx, sc, hsa_attend_decode(q, k, v, idx, ref.chunk_weights(sc), S)

    step()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for p in (150_000 * S + 5, 190_000 * S):               # replay at new positions: q_offset read at run time
        pos.fill_(p)
        graph.replay()
        torch.cuda.synchronize()
        ri, rs = ref.select_chunks(r, lmk, K, S, p)
        assert_topk_match("graph-select", ri, rs, out[0], out[1], tol=2e-4)
        o_ref = ref.hsa_attend(q, k, v, out[0], ref.chunk_weights(out[1]), S)
        assert_close("graph-o", o_ref.float(), out[2].float(), 1.5e-2)   # bf16 operands (see attend tests)
