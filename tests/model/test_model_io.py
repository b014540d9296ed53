"""Checkpoints (safetensors + config.json), greedy generation, and the ramba evaluation backend."""
import json

import numpy as np
import pytest
import torch

from ramba import RambaModel
from ramba.errors import CheckpointError
from ramba.generate import generate_greedy
from .helpers import small_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "ramba-small"
    model = small_model("ramba", mamba_segment=32)
    model.save_pretrained(path)
    return path, model


def test_round_trip_same_logits(ckpt):
    path, model = ckpt
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json",
                                                      "tokenizer_config.json"]
    loaded = RambaModel.from_pretrained(str(path))
    ids = torch.randint(0, 256, (1, 80), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(ids), loaded(ids))
    assert loaded.cfg == model.cfg
    assert loaded.lm_head.weight is loaded.embed.weight


def test_checkpoint_errors(ckpt, tmp_path):
    path, model = ckpt
    with pytest.raises(CheckpointError, match="neither a checkpoint folder nor a preset"):
        RambaModel.from_pretrained(str(tmp_path / "nope"))
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        RambaModel.from_pretrained(str(bad))
    (bad / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        RambaModel.from_pretrained(str(bad))
    blob = (path / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(blob[: len(blob) // 2])          # truncated
    with pytest.raises(CheckpointError, match="corrupt"):
        RambaModel.from_pretrained(str(bad))
    (bad / "model.safetensors").write_bytes(blob)
    cfg = json.loads((path / "config.json").read_text())
    cfg["n_upper"] = 4                                                       # config no longer matches weights
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"):
        RambaModel.from_pretrained(str(bad))
    cfg["n_upper"], cfg["d_state"] = 2, 8
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        RambaModel.from_pretrained(str(bad))
    (bad / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="corrupt"):
        RambaModel.from_pretrained(str(bad))


def test_preset_loads_deterministically():
    a = RambaModel.from_pretrained("tiny")
    b = RambaModel.from_pretrained("tiny")
    assert torch.equal(a.embed.weight, b.embed.weight) and a.cfg.vocab_size == 256


def test_greedy_generation_matches_full_forward():
    model = small_model("ramba", mamba_segment=32)
    prompt = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(2))
    new, state = generate_greedy(model, prompt, 12)
    assert new.shape == (2, 12) and state.pos == 40 + 11
    seq = prompt
    with torch.no_grad():
        for i in range(12):
            nxt = model(seq)[:, -1].argmax(-1)
            assert torch.equal(nxt, new[:, i])
            seq = torch.cat([seq, nxt[:, None]], dim=1)


def test_ramba_backend(ckpt):
    from ramba.evals.backends import load_backend
    path, model = ckpt
    be = load_backend("ramba", str(path), "cpu", segment=50)
    assert be.tokenizer.vocab_size == 256 and be.name == "ramba"
    ids = np.random.default_rng(0).integers(0, 256, size=130)
    with torch.no_grad():
        full = model(torch.as_tensor(ids)[None])[0]                          # [T, V]
    got = be.consume(ids[:97])                                               # two sub-segments of <= 50
    assert got.shape == (256,) and got.dtype == torch.float32
    assert (got - full[96]).abs().max() < 1e-4
    got = be.consume(ids[97:129])
    assert (got - full[128]).abs().max() < 1e-4
    assert (be.step(int(ids[129])) - full[129]).abs().max() < 1e-4
    assert be.state_bytes() > 0
    be.reset()
    assert (be.consume(ids[:10]) - full[9]).abs().max() < 1e-4
    ll, greedy = be.loglikelihood(list(ids[:20]), list(ids[20:23]))
    ref = torch.log_softmax(full[19:22], -1)[torch.arange(3), torch.as_tensor(ids[20:23])].sum()
    assert abs(ll - float(ref)) < 1e-3 and isinstance(greedy, bool)
