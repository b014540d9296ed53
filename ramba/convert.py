"""Convert the authors' RAMba checkpoints (hsa-spec.md §2 layer list, HF-Mamba2 style naming) to ours.

The authors' model is `backbone.layers` = [Mamba2Block x n_lower, ChunkingLayer, RetrievalLayer,
n_hsa x (HSA layer, Mamba2Block x per)] (one upper group), plus `backbone.embeddings`, `backbone.norm_f` and
`lm_head`. Mamba2 blocks use the same parameter names as ours (norm, mixer.{in_proj, conv1d, dt_bias, A_log,
D, norm, out_proj}); the chunking layer holds a Qwen2-style encoder (`encoder.layers.i.self_attn.*`,
`mlp.*`, `input_layernorm`, `post_attention_layernorm`, `encoder.norm`), `proj_k`, `proj_v`, `lmk_ln` and
`cls_emb`; the retrieval layer `pre_norm` and `ln`; HSA layers `pre_norm`, `q_proj`, `o_proj`.
Only the naming is the authors'; nothing of their code is used.
"""
from __future__ import annotations

import torch

from ramba.config import RambaConfig
from ramba.errors import CheckpointError

_MAMBA_KEYS = ("norm.weight", "mixer.in_proj.weight", "mixer.conv1d.weight", "mixer.conv1d.bias",
               "mixer.dt_bias", "mixer.A_log", "mixer.D", "mixer.norm.weight", "mixer.out_proj.weight")
_ENC_LAYER = {"self_attn.q_proj.weight": "q_proj.weight", "self_attn.q_proj.bias": "q_proj.bias",
              "self_attn.k_proj.weight": "k_proj.weight", "self_attn.k_proj.bias": "k_proj.bias",
              "self_attn.v_proj.weight": "v_proj.weight", "self_attn.v_proj.bias": "v_proj.bias",
              "self_attn.o_proj.weight": "o_proj.weight", "self_attn.q_norm.weight": "q_norm.weight",
              "self_attn.k_norm.weight": "k_norm.weight", "input_layernorm.weight": "attn_norm.weight",
              "post_attention_layernorm.weight": "mlp_norm.weight", "mlp.gate_proj.weight": "mlp.gate_proj.weight",
              "mlp.up_proj.weight": "mlp.up_proj.weight", "mlp.down_proj.weight": "mlp.down_proj.weight"}


def authors_layer_plan(cfg: RambaConfig) -> list[tuple[str, str]]:
    """(kind, our module prefix) for each index of the authors' backbone.layers."""
    plan = [("mamba", f"lower.{j}.") for j in range(cfg.n_lower)]
    plan += [("chunking", "encoder."), ("retrieval", "retrieval.")]
    per = cfg.upper_per_hsa
    for g in range(cfg.n_hsa):
        plan.append(("hsa", f"hsa.{g}."))
        plan += [("mamba", f"upper.{g * per + j}.") for j in range(per)]
    return plan


def key_map(cfg: RambaConfig) -> dict[str, str]:
    """authors' key -> our key (cls_emb is reshaped separately)."""
    if cfg.arch != "ramba":
        raise CheckpointError(f"the authors' checkpoints are arch 'ramba', not {cfg.arch!r}")
    m = {"backbone.norm_f.weight": "norm_f.weight"}
    for i, (kind, ours) in enumerate(authors_layer_plan(cfg)):
        src = f"backbone.layers.{i}."
        if kind == "mamba":
            m.update({src + k: ours + k for k in _MAMBA_KEYS})
        elif kind == "chunking":
            for layer in range(cfg.enc_layers):
                for a, b in _ENC_LAYER.items():
                    m[f"{src}encoder.layers.{layer}.{a}"] = f"{ours}layers.{layer}.{b}"
            m[src + ("encoder.norm.weight" if cfg.enc_layers else "norm.weight")] = ours + "norm.weight"
            m[src + "proj_k.weight"] = ours + "k_proj.weight"
            m[src + "proj_v.weight"] = ours + "v_proj.weight"
            m[src + "lmk_ln.weight"] = ours + "lmk_proj.weight"
            if cfg.enc_layers and cfg.landmark == "cls":
                m[src + "cls_emb"] = ours + "cls"
        elif kind == "retrieval":
            m[src + "pre_norm.weight"] = ours + "norm.weight"
            m[src + "ln.weight"] = ours + "r_proj.weight"
        else:
            m[src + "pre_norm.weight"] = ours + "norm.weight"
            m[src + "q_proj.weight"] = ours + "q_proj.weight"
            m[src + "o_proj.weight"] = ours + "o_proj.weight"
    return m


def convert_authors_state_dict(sd: dict[str, torch.Tensor], cfg: RambaConfig) -> dict[str, torch.Tensor]:
    """Rename the authors' state dict to ours for `cfg` (tied embeddings: lm_head must equal the embedding).

    Raises CheckpointError naming missing or unexpected keys. The learnable score bias, which the authors'
    model does not have, is set to zero (their scores have no bias).
    """
    sd = dict(sd)
    emb = sd.pop("backbone.embeddings.weight", sd.pop("backbone.embedding.weight", None))
    if emb is None:
        raise CheckpointError("authors' state dict has no backbone.embeddings.weight")
    head = sd.pop("lm_head.weight", None)
    out = {"embed.weight": emb}
    if cfg.tie_embeddings:
        if head is not None and not torch.equal(head, emb):
            raise CheckpointError("lm_head.weight differs from the embedding: convert with tie_embeddings=False")
    else:
        if head is None:
            raise CheckpointError("authors' state dict has no lm_head.weight (needed with tie_embeddings=False)")
        out["lm_head.weight"] = head
    mapping = key_map(cfg)
    missing = sorted(k for k in mapping if k not in sd)
    unexpected = sorted(k for k in sd if k not in mapping)
    if missing or unexpected:
        raise CheckpointError(f"authors' state dict does not match the config: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]} ({len(missing)} / {len(unexpected)} in all)")
    for src, dst in mapping.items():
        t = sd[src]
        out[dst] = t.reshape(-1) if src.endswith("cls_emb") else t
    out["retrieval.score_bias"] = torch.zeros(cfg.hsa_kv_heads, dtype=emb.dtype)
    return out


def config_from_authors(c: dict, **overrides) -> RambaConfig:
    """RambaConfig from the authors' config.json keys (spec §1.1); one upper group only."""
    if c.get("num_upper_groups", 1) != 1:
        raise CheckpointError("only num_upper_groups == 1 is supported (one selection shared by all HSA layers)")
    try:
        d = c["hidden_size"]
        n_upper = c["num_upper_layers"]
        heads = c["num_attention_heads"]
        cfg = dict(
            arch="ramba", vocab_size=c["vocab_size"], d_model=d, n_lower=c["num_lower_layers"], n_upper=n_upper,
            n_hsa=n_upper // c["num_mamba_per_gca"], d_state=c.get("state_size", 128),
            mamba_headdim=c.get("head_dim", 64), expand=c.get("expand", 2), d_conv=c.get("conv_kernel", 4),
            n_groups=c.get("n_groups", 1), ssd_chunk=c.get("mamba_chunk_size", 256), chunk_size=c["chunk_size"],
            topk=c["chunk_topk"], hsa_heads=heads, hsa_kv_heads=c["num_kv_heads"], hsa_head_dim=d // heads,
            retrieval_dim=c["retrieval_dim"], enc_layers=c.get("encoder_layers", 1), enc_heads=heads,
            enc_kv_heads=c.get("num_key_value_heads", heads),
            fusion="softmax" if c.get("enable_softmax", False) else "stick_breaking",
            sm_n=1.0 if c.get("enable_softmax1", False) else 0.0, norm_eps=c.get("layer_norm_epsilon", 1e-5),
            init_std=c.get("initializer_range", 0.02), tie_embeddings=bool(c.get("tie_word_embeddings", False)))
    except KeyError as e:
        raise CheckpointError(f"authors' config lacks {e.args[0]!r}") from None
    cfg.update(overrides)
    return RambaConfig(**cfg)
