"""RambaConfig: JSON round trip, validation errors, and the parameter counts of the paper-sized presets."""
import dataclasses

import pytest
import torch

from ramba import PRESETS, RambaConfig, RambaModel
from ramba.errors import BadInputError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    cfg = RambaConfig.from_preset(name)
    assert RambaConfig.from_json(cfg.to_json()) == cfg
    assert RambaConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.d_model = 3


@pytest.mark.parametrize("bad", [dict(arch="rnn"), dict(fusion="max"), dict(n_upper=3, n_hsa=2),
                                 dict(hsa_heads=6, hsa_kv_heads=4), dict(chunk_size=24), dict(d_model=-1),
                                 dict(mamba_segment=-5), dict(landmark="first")])
def test_bad_values_raise_one_line_errors(bad):
    with pytest.raises(BadInputError) as e:
        RambaConfig(**bad)
    assert "\n" not in str(e.value)


def test_unknown_key_and_preset():
    with pytest.raises(BadInputError, match="unknown key"):
        RambaConfig.from_dict({"d_model": 64, "colour": "red"})
    with pytest.raises(BadInputError, match="unknown preset"):
        RambaConfig.from_preset("1t")
    with pytest.raises(BadInputError):
        RambaConfig.from_json("{not json")


def mamba2_backbone(d, n_layers, vocab, d_state=128, headdim=64, expand=2, d_conv=4):
    """Mamba2 LM parameters (tied embeddings): per block in_proj (z, x, B, C, dt), depthwise conv with bias,
    dt_bias/A_log/D, gated norm, out_proj, block norm; plus embedding and final norm."""
    di = expand * d
    H = di // headdim
    block = d * (2 * di + 2 * d_state + H) + (di + 2 * d_state) * (d_conv + 1) + 3 * H + di + di * d + d
    return n_layers * block + vocab * d + d


def hsa_extras(d, enc_layers, enc_ffn, n_hsa, hsa_q_dim, kv_dim, retrieval_dim):
    """spec §1.2/§2: encoder layers (q,k,v with bias, o, SwiGLU), W_lmk, W_K, W_V, W_r, n_hsa x (q, o)."""
    enc = enc_layers * (3 * (d * d + d) + d * d + 3 * d * enc_ffn)
    return enc + d * retrieval_dim + 2 * d * kv_dim + d * retrieval_dim + n_hsa * 2 * d * hsa_q_dim


@pytest.mark.parametrize("name,expected", [
    # 370M: Mamba2 backbone (d 1024, 48 blocks, vocab 50280) + the ~21M HSA extras of spec §2
    ("370m", mamba2_backbone(1024, 48, 50280) + hsa_extras(1024, 1, 2688, 3, 1024, 64, 1024)),
    # 2.7B: Mamba2-2.7B backbone (d 2560, 64 blocks, vocab 50288) + encoder x2, 4 HSA layers of 80 x 32
    ("3b", mamba2_backbone(2560, 64, 50288) + hsa_extras(2560, 2, 6784, 4, 2560, 160, 2560)),
])
def test_paper_preset_parameter_counts(name, expected):
    extras_370m = hsa_extras(1024, 1, 2688, 3, 1024, 64, 1024)
    assert 20e6 < extras_370m < 22e6                 # the spec's "extra params ~ 21M"
    with torch.device("meta"):
        model = RambaModel(RambaConfig.from_preset(name))
    n = model.num_parameters()
    assert abs(n - expected) / expected < 0.02, (name, n, expected)


def test_presets_scale():
    with torch.device("meta"):
        n370 = RambaModel(RambaConfig.from_preset("370m")).num_parameters()
        n3b = RambaModel(RambaConfig.from_preset("3b")).num_parameters()
        tiny = RambaModel(RambaConfig.from_preset("tiny")).num_parameters()
    assert 380e6 < n370 < 400e6 and 2.85e9 < n3b < 3.0e9 and 2e6 < tiny < 7e6
