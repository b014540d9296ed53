"""Segmented whole-span scoring (evals/lm_scoring.py) equals token-by-token scoring, batched or not."""
from types import SimpleNamespace as Req

import pytest

from ramba.errors import DoesNotFitError
from ramba.evals.backends import LoglikelihoodMixin, load_backend
from ramba.evals.lm_eval_plugin import RambaLM
from ramba.evals.lm_scoring import expand_batch

TEXTS = ["The grass is green. The sky is blue. " * 3, "Here we go.", "There and back again, " * 4 + "the end."]


def token_by_token(backend, context, continuation):
    return LoglikelihoodMixin.loglikelihood(backend, list(context), list(continuation))


@pytest.fixture(scope="module", params=[("ramba", 32), ("transformer", None)], ids=["ramba", "transformer"])
def lm(request, tmp_path_factory):
    from tests.model.helpers import small_model
    arch, seg = request.param
    path = tmp_path_factory.mktemp("m") / arch
    small_model(arch, mamba_segment=seg).save_pretrained(path)
    return RambaLM(model=f"ramba:{path}", device="cpu", segment=40, progress=False)


def test_rolling_equals_token_by_token(lm):
    got = lm.loglikelihood_rolling([Req(args=(t,)) for t in TEXTS])
    lm.pack_unshared = True        # the GPU layout: all documents in one padded batch
    try:
        packed = lm.loglikelihood_rolling([Req(args=(t,)) for t in TEXTS])
    finally:
        lm.pack_unshared = False
    assert packed == pytest.approx(got, abs=1e-3)
    for t, g in zip(TEXTS, got):
        want, _ = token_by_token(lm.backend, lm.prefix_ids, t.encode())
        assert abs(g - want) < 1e-3 * max(1.0, abs(want)), (t, g, want)


def test_shared_context_batch_equals_one_by_one(lm):
    ctx = TEXTS[0] + "What colour is the sky? It is"
    conts = [" blue.", " green", " yellow and red", " b"]
    batched = lm.loglikelihood([Req(args=(ctx, c)) for c in conts])
    lm.batch_size_per_call = 1
    try:
        single = lm.loglikelihood([Req(args=(ctx, c)) for c in conts])
    finally:
        lm.batch_size_per_call = 16
    for c, (ll, greedy), (ll1, greedy1) in zip(conts, batched, single):
        want, want_greedy = token_by_token(lm.backend, ctx.encode(), c.encode())
        assert abs(ll - want) < 1e-3 and abs(ll1 - want) < 1e-3 and greedy == greedy1 == want_greedy


def test_expand_batch_copies_every_row():
    from tests.model.helpers import small_model
    import torch
    m = small_model("ramba", mamba_segment=32)
    st = m.allocate_state(1)
    m.prefill(torch.randint(0, 256, (1, 50)), st)
    big = expand_batch(st, 3)
    assert big.batch_size == 3 and big.pos == st.pos == 50 and big.memory.num_chunks == st.memory.num_chunks
    x = torch.randint(0, 256, (1, 7))
    a, _ = m.prefill(x, st)
    b, _ = m.prefill(x.expand(3, -1), big)
    assert torch.allclose(a.expand(3, -1, -1), b, atol=1e-5)


def test_too_long_is_an_error_not_a_cut(lm):
    short = RambaLM(backend=lm.backend, max_length=20, progress=False)
    with pytest.raises(DoesNotFitError, match="at most 20"):
        short.loglikelihood_rolling([Req(args=(TEXTS[0],))])
    with pytest.raises(DoesNotFitError, match="at most 20"):
        short.generate_until([Req(args=(TEXTS[0], {"max_gen_toks": 4}))])


def test_hf_backend_rolling_equals_token_by_token():
    from ramba.evals import defaults
    be = load_backend("hf", str(defaults.ensure_tiny_hf_model()), "cpu")
    lm = RambaLM(backend=be, segment=16, progress=False)
    got = lm.loglikelihood_rolling([Req(args=(t,)) for t in TEXTS[:2]])
    for t, g in zip(TEXTS, got):
        want, _ = token_by_token(be, lm.prefix_ids, t.encode())
        assert abs(g - want) < 1e-3 * max(1.0, abs(want))
