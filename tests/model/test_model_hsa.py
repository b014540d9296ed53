"""Causality, chunk visibility, gradient routing, bounded selection and the training hooks."""
import pytest
import torch

import ramba.hsa as hsa_mod
from ramba.hsa import select_chunks_bounded
from ramba.kernels.hsa import reference as ref
from .helpers import small_model

T = 112


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 256, (2, T), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("arch", ["ramba", "swa-hsa", "mamba2", "transformer"])
def test_causality(arch, ids):
    """Changing token t never changes any output before t (and does change some output at/after t)."""
    model = small_model(arch, mamba_segment=32)
    t = 70
    other = ids.clone()
    other[:, t] = (other[:, t] + 1) % 256
    with torch.no_grad():
        a, b = model(ids), model(other)
    assert torch.equal(a[:, :t], b[:, :t])
    assert (a[:, t:] - b[:, t:]).abs().max() > 1e-3


def test_selected_chunks_are_strictly_past(ids):
    model = small_model("ramba")
    S = model.cfg.chunk_size
    with torch.no_grad():
        _, aux = model(ids, return_aux=True)
    idx = aux["indices"]                                                   # [B, T, Hkv, K]
    pos = torch.arange(T)[None, :, None, None]
    valid = idx >= 0
    assert torch.all((idx + 1) * S <= pos + (~valid) * 10**9)             # chunk c only if t >= (c+1)S
    # every query sees min(K, t // S) chunks; recency order (descending ids)
    assert torch.equal(valid.sum(-1), torch.clamp(pos[..., 0].expand_as(idx[..., 0]) // S, max=model.cfg.topk))
    srt = torch.where(valid, idx, torch.full_like(idx, -1))
    assert torch.equal(srt, srt.sort(dim=-1, descending=True).values)
    assert torch.all(aux["weights"][~valid] == 0) and torch.all(aux["weights"][:, :S] == 0)


def test_no_hsa_output_from_own_or_later_chunk(ids):
    """Perturb the memory (K, V, landmark) of chunk c: tokens t < (c+1)S are untouched, tokens after change.
    Tokens t < S get exactly zero HSA output: bitwise the same logits as with HSA disabled."""
    model = small_model("ramba")
    S, c = model.cfg.chunk_size, 3

    def hook(_mod, _inp, out):
        lmk, k, v = out
        n = lmk.shape[0] // 2                          # rows are (batch, chunk); B = 2
        lmk, k, v = lmk.clone(), k.clone(), v.clone()
        for b in range(2):
            lmk[b * n + c] += 3.0
            k[b * n + c] += 3.0
            v[b * n + c] -= 3.0
        return lmk, k, v

    with torch.no_grad():
        base = model(ids)
        h = model.encoder.register_forward_hook(hook)
        pert = model(ids)
        h.remove()
        off = model(ids, hsa_enabled=False)
    assert torch.equal(base[:, :(c + 1) * S], pert[:, :(c + 1) * S])
    assert (base[:, (c + 1) * S:] - pert[:, (c + 1) * S:]).abs().max() > 1e-3
    assert torch.equal(base[:, :S], off[:, :S])


def test_retrieval_gets_gradient_only_through_weights(ids):
    """dL/d(W_r, W_lmk, score bias) equals the chain through the fusion weights alone (selection indices carry
    no gradient); the encoder's and CLS's gradient is exactly (through weights) + (through memory K/V)."""
    model = small_model("ramba").train()
    logits, aux = model(ids, return_aux=True)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    w, mk, mv = aux["weights"], aux["mem_k"], aux["mem_v"]
    enc = model.encoder
    params = [model.retrieval.r_proj.weight, enc.lmk_proj.weight, enc.cls, model.retrieval.score_bias,
              enc.layers[0].q_proj.weight]
    direct = torch.autograd.grad(loss, params + [w, mk, mv], retain_graph=True)
    gw, gk, gv = direct[-3:]
    via_w = torch.autograd.grad(w, params, grad_outputs=gw, retain_graph=True, allow_unused=True)
    via_kv = torch.autograd.grad((mk, mv), params, grad_outputs=(gk, gv), retain_graph=True, allow_unused=True)
    for p, d, a, b in zip(params, direct, via_w, via_kv):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        assert d.abs().max() > 0
        # sums of the same fp32 terms in another order: 1e-5 relative
        assert torch.allclose(d, a + b, rtol=1e-4, atol=1e-6 * d.abs().max().item())
    for i in (0, 1, 3):      # W_r, W_lmk, score bias: nothing through K/V (CLS and encoder feed both)
        assert via_kv[i] is None or via_kv[i].abs().max() == 0


@pytest.mark.parametrize("q_offset,T_q,C", [(0, 50, 6), (100, 7, 9), (1000, 300, 70), (2**33, 5, 9)])
def test_bounded_select_equals_reference(monkeypatch, q_offset, T_q, C):
    monkeypatch.setattr(hsa_mod, "MAX_SCORE_ELEMS", 64)      # force many small landmark blocks
    g = torch.Generator().manual_seed(C)
    r = torch.randn(2, T_q, 2, 8, generator=g)
    lmk = torch.randn(2, C, 2, 8, generator=g)
    i_ref, s_ref = ref.select_chunks(r, lmk, 4, 16, q_offset)
    i_got, s_got = select_chunks_bounded(r, lmk, 4, 16, q_offset)
    assert torch.equal(i_ref, i_got)
    assert torch.equal(torch.isinf(s_ref), torch.isinf(s_got))
    fin = torch.isfinite(s_ref)
    assert torch.allclose(s_ref[fin], s_got[fin], atol=1e-6)


def test_forced_indices_replace_selection(ids):
    model = small_model("ramba")
    S, K = model.cfg.chunk_size, model.cfg.topk
    forced = torch.full((2, T, 2, K), -1, dtype=torch.int64)
    forced[:, 2 * S:, :, 0] = 0                            # oracle: always chunk 0 once visible
    forced[:, 2 * S:, :, 1] = 1
    forced[:, :2 * S, :, 0] = 5                            # not visible yet: must be dropped, not used
    with torch.no_grad():
        _, aux = model(ids, return_aux=True, forced_indices=forced)
    idx = aux["indices"]
    assert torch.all(idx[:, :2 * S] == -1)
    assert torch.all(idx[:, 2 * S:, :, 0] == 1) and torch.all(idx[:, 2 * S:, :, 1] == 0)   # recency order
    assert torch.all(aux["weights"][:, 2 * S:, :, :2] > 0)


def test_gathered_attend_equals_reference_with_gradients():
    from ramba.hsa import hsa_attend_gathered
    g = torch.Generator().manual_seed(11)
    B, T, Hq, Hkv, d, S, C, K = 2, 9, 4, 2, 8, 16, 12, 3
    q = torch.randn(B, T, Hq, d, generator=g, requires_grad=True)
    k = torch.randn(B, C * S, Hkv, d, generator=g, requires_grad=True)
    v = torch.randn(B, C * S, Hkv, d, generator=g, requires_grad=True)
    idx = torch.randint(0, C, (B, T, Hkv, K), generator=g)
    idx[0, 0] = -1                                                     # invalid slots
    idx[1, 3, :, 1:] = -1
    w = torch.rand(B, T, Hkv, K, generator=g, requires_grad=True)
    do = torch.randn(B, T, Hq, d, generator=g)
    outs, grads = [], []
    for fn in (ref.hsa_attend, hsa_attend_gathered):
        o = fn(q, k, v, idx, w, S, sm_n=1.0)
        outs.append(o)
        grads.append(torch.autograd.grad(o, (q, k, v, w), do))
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_select_noise_explores_in_training_only(ids):
    model = small_model("ramba", select_noise=3.0)
    S = model.cfg.chunk_size
    with torch.no_grad():
        _, clean = small_model("ramba")(ids, return_aux=True)
        _, ev = model(ids, return_aux=True)                       # eval mode: no noise
        model.train()
        _, tr = model(ids, return_aux=True)
    assert torch.equal(ev["indices"], clean["indices"])
    idx = tr["indices"]
    assert not torch.equal(idx, clean["indices"])                  # noise changed some choices
    pos = torch.arange(T)[None, :, None, None]
    valid = idx >= 0
    assert torch.equal(valid, clean["indices"] >= 0)               # same number of slots per token
    assert torch.all((idx + 1) * S <= pos + (~valid) * 10**9)     # still only strictly past chunks
    assert torch.equal(idx, idx.sort(dim=-1, descending=True).values)
