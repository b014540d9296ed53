"""Converter from the authors' state-dict naming (hsa-spec.md §2), on a synthetic state dict built here from
the spec's layer list, with the names written out independently of ramba/convert.py."""
import pytest
import torch

from ramba import PRESETS, RambaModel
from ramba.checkpoint import load_into
from ramba.convert import config_from_authors, convert_authors_state_dict
from ramba.errors import CheckpointError

AUTHORS_CFG = dict(vocab_size=256, hidden_size=64, num_lower_layers=2, num_upper_layers=4, num_mamba_per_gca=2,
                   num_upper_groups=1, state_size=16, head_dim=32, expand=2, conv_kernel=4, n_groups=1,
                   mamba_chunk_size=16, chunk_size=64, chunk_topk=3, num_attention_heads=4, num_kv_heads=2,
                   num_key_value_heads=2, retrieval_dim=64, encoder_layers=1, tie_word_embeddings=False)


def synthetic_authors_state_dict(c, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    d, V, N, P = c["hidden_size"], c["vocab_size"], c["state_size"], c["head_dim"]
    di = c["expand"] * d
    H = di // P
    conv = di + 2 * N
    hd = d // c["num_attention_heads"]
    kv = c["num_kv_heads"] * hd
    enc_kv = c["num_key_value_heads"] * hd
    ffn = (d * 8 // 3) // 64 * 64
    sd = {"backbone.embeddings.weight": t(V, d), "backbone.norm_f.weight": t(d), "lm_head.weight": t(V, d)}

    def mamba(i):
        p = f"backbone.layers.{i}."
        sd.update({p + "norm.weight": t(d), p + "mixer.in_proj.weight": t(2 * di + 2 * N + H, d),
                   p + "mixer.conv1d.weight": t(conv, 1, 4), p + "mixer.conv1d.bias": t(conv),
                   p + "mixer.dt_bias": t(H), p + "mixer.A_log": t(H), p + "mixer.D": t(H),
                   p + "mixer.norm.weight": t(di), p + "mixer.out_proj.weight": t(d, di)})

    i = 0
    for _ in range(c["num_lower_layers"]):
        mamba(i)
        i += 1
    p = f"backbone.layers.{i}."                                   # ChunkingLayer
    e = p + "encoder.layers.0."
    sd.update({e + "self_attn.q_proj.weight": t(d, d), e + "self_attn.q_proj.bias": t(d),
               e + "self_attn.k_proj.weight": t(enc_kv, d), e + "self_attn.k_proj.bias": t(enc_kv),
               e + "self_attn.v_proj.weight": t(enc_kv, d), e + "self_attn.v_proj.bias": t(enc_kv),
               e + "self_attn.o_proj.weight": t(d, d), e + "self_attn.q_norm.weight": t(hd),
               e + "self_attn.k_norm.weight": t(hd), e + "input_layernorm.weight": t(d),
               e + "post_attention_layernorm.weight": t(d), e + "mlp.gate_proj.weight": t(ffn, d),
               e + "mlp.up_proj.weight": t(ffn, d), e + "mlp.down_proj.weight": t(d, ffn),
               p + "encoder.norm.weight": t(d), p + "proj_k.weight": t(kv, d), p + "proj_v.weight": t(kv, d),
               p + "lmk_ln.weight": t(c["retrieval_dim"], d), p + "cls_emb": t(1, 1, d)})
    i += 1
    sd.update({f"backbone.layers.{i}.pre_norm.weight": t(d), f"backbone.layers.{i}.ln.weight": t(c["retrieval_dim"], d)})
    i += 1
    for _ in range(c["num_upper_layers"] // c["num_mamba_per_gca"]):
        p = f"backbone.layers.{i}."
        sd.update({p + "pre_norm.weight": t(d), p + "q_proj.weight": t(d, d), p + "o_proj.weight": t(d, d)})
        i += 1
        for _ in range(c["num_mamba_per_gca"]):
            mamba(i)
            i += 1
    return sd


def test_convert_synthetic_authors_checkpoint():
    cfg = config_from_authors(AUTHORS_CFG)
    sd = synthetic_authors_state_dict(AUTHORS_CFG)
    model = RambaModel(cfg).eval()
    load_into(model, convert_authors_state_dict(sd, cfg), "synthetic")   # strict: every key and shape
    # spot checks, by the spec's layer order: 2 lower, chunking (2), retrieval (3), HSA (4), 2 Mamba, HSA (7), 2 Mamba
    assert torch.equal(model.lower[1].mixer.in_proj.weight, sd["backbone.layers.1.mixer.in_proj.weight"])
    assert torch.equal(model.encoder.cls, sd["backbone.layers.2.cls_emb"].flatten())
    assert torch.equal(model.encoder.layers[0].attn_norm.weight, sd["backbone.layers.2.encoder.layers.0.input_layernorm.weight"])
    assert torch.equal(model.encoder.lmk_proj.weight, sd["backbone.layers.2.lmk_ln.weight"])
    assert torch.equal(model.retrieval.r_proj.weight, sd["backbone.layers.3.ln.weight"])
    assert torch.equal(model.hsa[1].q_proj.weight, sd["backbone.layers.7.q_proj.weight"])
    assert torch.equal(model.upper[1].mixer.A_log, sd["backbone.layers.6.mixer.A_log"])
    assert torch.equal(model.upper[2].norm.weight, sd["backbone.layers.8.norm.weight"])
    assert torch.equal(model.lm_head.weight, sd["lm_head.weight"])
    assert torch.all(model.retrieval.score_bias == 0)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randint(0, 256, (1, 130)))).all()


def test_convert_errors():
    cfg = config_from_authors(AUTHORS_CFG)
    sd = synthetic_authors_state_dict(AUTHORS_CFG)
    broken = dict(sd)
    del broken["backbone.layers.7.o_proj.weight"]
    with pytest.raises(CheckpointError, match="missing"):
        convert_authors_state_dict(broken, cfg)
    with pytest.raises(CheckpointError, match="unexpected"):
        convert_authors_state_dict({**sd, "backbone.layers.99.q_proj.weight": torch.zeros(1)}, cfg)
    with pytest.raises(CheckpointError, match="tie_embeddings"):
        convert_authors_state_dict(sd, cfg.replace(tie_embeddings=True))
    with pytest.raises(CheckpointError, match="lacks"):
        config_from_authors({"hidden_size": 64})
    small = config_from_authors(AUTHORS_CFG, n_upper=2)             # a config that does not fit the weights
    with pytest.raises(CheckpointError):
        convert_authors_state_dict(sd, small)


def test_authors_370m_config_maps_to_preset():
    c = dict(vocab_size=50280, hidden_size=1024, num_lower_layers=24, num_upper_layers=24, num_mamba_per_gca=8,
             num_upper_groups=1, state_size=128, head_dim=64, expand=2, chunk_size=64, chunk_topk=8,
             num_attention_heads=16, num_kv_heads=1, num_key_value_heads=16, retrieval_dim=1024,
             encoder_layers=1, mamba_chunk_size=256, tie_word_embeddings=True)
    got = config_from_authors(c)
    want = PRESETS["370m"]
    for f in ("d_model", "n_lower", "n_upper", "n_hsa", "d_state", "mamba_headdim", "chunk_size", "topk",
              "hsa_heads", "hsa_kv_heads", "hsa_head_dim", "retrieval_dim", "enc_layers", "enc_heads",
              "enc_kv_heads", "vocab_size", "ssd_chunk", "fusion", "sm_n"):
        assert getattr(got, f) == getattr(want, f), f
