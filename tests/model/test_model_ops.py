"""The op table: the model gives the same results with the Triton HSA ops (interpreted on CPU) as with the
reference, and training gradients do not depend on whether the select op is differentiable."""
import dataclasses

import pytest
import torch

from ramba.errors import BadInputError
from ramba.ops import get_ops, resolve_backend
from .helpers import run_segments, small_model


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("RAMBA_OPS", raising=False)
    assert resolve_backend(None, "cpu") == "reference" and resolve_backend(None, "cuda") == "triton"
    assert resolve_backend("reference", "cuda") == "reference"
    monkeypatch.setenv("RAMBA_OPS", "triton")
    assert resolve_backend("reference", "cpu") == "triton"
    monkeypatch.setenv("RAMBA_OPS", "cuda-magic")
    with pytest.raises(BadInputError):
        resolve_backend(None, "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter test (CPU tensors); the GPU test covers CUDA")
def test_triton_ops_match_reference_in_model():
    model = small_model("ramba")
    ids = torch.randint(0, 256, (2, 80), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(ids)
    model.ops_backend = "triton"
    assert model.ops(ids.device).name == "triton"
    # fp32 in the interpreter: same math, another summation order (~1e-6)
    with torch.no_grad():
        assert (model(ids) - ref).abs().max() < 1e-4
    assert (run_segments(model, ids, [50, 1, 1]) - ref).abs().max() < 1e-4


def test_gradients_independent_of_select_differentiability(monkeypatch):
    ids = torch.randint(0, 256, (1, 64), generator=torch.Generator().manual_seed(6))
    grads = []
    for detach in (False, True):
        model = small_model("ramba").train()
        table = get_ops("reference")
        if detach:
            def sel(*a, _f=table.select_chunks, **k):
                i, s = _f(*a, **k)
                return i, s.detach()
            table = dataclasses.replace(table, select_chunks=sel)
        monkeypatch.setattr(model, "ops", lambda device, _t=table: _t)
        model(ids).float().pow(2).mean().backward()
        grads.append(model.retrieval.r_proj.weight.grad.clone())
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-9)


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter test (CPU tensors)")
def test_mixed_dtype_state_with_triton_ops():
    """A bf16 activation path against an fp32 state memory (what autocast gives on GPU) must reach the
    kernels with one dtype (the Triton ops reject mixed dtypes)."""
    ids = torch.randint(0, 256, (1, 40), generator=torch.Generator().manual_seed(8))
    half = small_model("ramba").to(torch.float16)                    # fp16 weights: fp16 q and r
    half.ops_backend = "triton"
    state = half.allocate_state(1, dtype=torch.float32)              # fp32 memory and chunk buffer
    out1, state = half.prefill(ids[:, :21], state)                   # leaves a partial chunk buffered
    out2, state = half.prefill(ids[:, 21:], state)
    assert torch.isfinite(out1.float()).all() and torch.isfinite(out2.float()).all()
