import numpy as np
import pytest
import torch

from ramba.errors import BadInputError, CheckpointError
from ramba.evals.backends import BACKENDS, load_backend, parse_model_spec


def test_model_spec_parsing():
    assert parse_model_spec("hf:/a/b:c") == ("hf", "/a/b:c")
    assert parse_model_spec("oracle") == ("oracle", None)
    assert BACKENDS["ramba"] == "ramba.evals.ramba_backend:RambaBackend" or callable(BACKENDS["ramba"])
    with pytest.raises(BadInputError, match="unknown model backend 'gpt'"):
        parse_model_spec("gpt:4")
    with pytest.raises(BadInputError, match="empty ID"):
        parse_model_spec("hf:")


def test_dummy_is_deterministic_and_depends_on_input():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 256, size=300)
    a, b = load_backend("dummy", None, "cpu"), load_backend("dummy", None, "cpu")
    la, lb = a.consume(ids), b.consume(ids[:100])
    lb = b.consume(ids[100:])
    assert torch.equal(la, lb) and la.shape == (256,) and la.dtype == torch.float32
    a.reset()
    assert not torch.equal(a.consume(ids[:299]), la)  # another prefix gives other logits


def test_oracle_copies_the_needle():
    rng = np.random.default_rng(1)
    hay = rng.integers(0, 200, size=3000)
    lead, value = np.array([250, 251, 252, 253]), rng.integers(0, 200, size=7)
    ctx = np.concatenate([hay[:1234], lead, value, hay[1234:], lead])
    be = load_backend("oracle", None, "cpu")
    logits = be.consume(ctx[:1000])
    logits = be.consume(ctx[1000:])
    got = []
    for _ in range(len(value)):
        got.append(int(logits.argmax()))
        logits = be.step(got[-1])
    assert got == value.tolist()
    ll, greedy = be.loglikelihood(ctx.tolist(), value.tolist())
    assert greedy and ll > -1e-3  # logits are +-10 one-hot: log p(argmax) ~ -255 * e^-20


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    from ramba.evals.defaults import ensure_tiny_hf_model
    return ensure_tiny_hf_model(tmp_path_factory.mktemp("m") / "tiny")


def test_hf_segments_match_one_forward(tiny_hf):
    """Feeding the prompt in segments through past_key_values gives the same next-token logits as one pass."""
    from transformers import AutoModelForCausalLM
    be = load_backend("hf", str(tiny_hf), "cpu")
    ids = np.random.default_rng(2).integers(0, 256, size=333)
    be.reset()
    for s in range(0, 333, 100):
        seg = be.consume(ids[s:s + 100])
    step = be.step(7)
    assert be.state_bytes() == 2 * 2 * 2 * 16 * 4 * 334  # K and V x layers x kv heads x head dim x fp32 x tokens
    ref = AutoModelForCausalLM.from_pretrained(tiny_hf, dtype=torch.float32).eval()
    from ramba.evals.defaults import TINY_HF_WEIGHT_BYTES
    assert sum(p.numel() for p in ref.parameters()) * 4 == TINY_HF_WEIGHT_BYTES  # what --dry-run reports
    with torch.no_grad():
        full = ref(torch.as_tensor(np.append(ids, 7))[None]).logits[0]
    # fp32 on CPU: segmenting only changes the summation order inside attention (~1e-6 relative)
    torch.testing.assert_close(seg, full[-2], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(step, full[-1], rtol=1e-4, atol=1e-4)
    ll, _ = be.loglikelihood(ids.tolist(), [7, 9])
    want = torch.log_softmax(full[-2], -1)[7] + torch.log_softmax(
        ref(torch.as_tensor(np.append(ids, 7))[None]).logits[0, -1].detach(), -1)[9]
    assert abs(ll - float(want)) < 1e-3


def test_hf_bad_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_backend("hf", str(tmp_path), "cpu")
    with pytest.raises(BadInputError, match="local model folder"):
        load_backend("hf", None, "cpu")


def test_hf_remote_code_needs_explicit_trust(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "customx", "auto_map": {"AutoConfig": "cfg.C", "AutoModelForCausalLM": "mdl.M"}}')
    (tmp_path / "cfg.py").write_text("raise SystemExit('remote code ran')\n")  # must never be imported
    with pytest.raises(BadInputError, match="--trust-remote-code"):
        load_backend("hf", str(tmp_path), "cpu", tokenizer="byte")
