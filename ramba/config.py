"""RambaConfig: one frozen, typed description of every architecture of the model family, plus named presets.

Layer layout (hsa-spec.md §2): embedding -> n_lower mixer blocks -> chunk encoder (landmarks + memory K/V,
shared by all HSA layers) -> one retrieval (top-k per KV group) -> n_hsa x [HSA layer -> n_upper/n_hsa mixer
blocks] -> final norm -> LM head (tied). The mixer is Mamba2 for `ramba`/`mamba2`, sliding-window attention
for `swa-hsa` and full causal attention for `transformer`; `mamba2` and `transformer` have no HSA.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields

from ramba.errors import BadInputError

ARCHS = ("ramba", "swa-hsa", "mamba2", "transformer")
HSA_ARCHS = ("ramba", "swa-hsa")


@dataclass(frozen=True)
class RambaConfig:
    arch: str = "ramba"
    vocab_size: int = 256
    d_model: int = 256
    n_lower: int = 2                 # mixer blocks below the chunk encoder
    n_upper: int = 2                 # mixer blocks above it (split evenly after the HSA layers)
    n_hsa: int = 2                   # HSA layers (0 for mamba2/transformer)
    # Mamba2 mixer
    d_state: int = 64
    mamba_headdim: int = 64
    expand: int = 2
    d_conv: int = 4
    n_groups: int = 1
    ssd_chunk: int = 64              # chunk length of the chunked SSD scan
    mamba_segment: int | None = None  # reset every Mamba2 state every this many tokens (None = never)
    # Evaluation: the reset grid is anchored to the prompt's end so the last reset falls exactly reset_tail
    # tokens before it, whatever the length (None = grid at absolute multiples of mamba_segment).
    reset_tail: int | None = None
    # attention mixers (swa-hsa, transformer)
    attn_heads: int = 8
    swa_window: int = 512
    mlp_hidden: int = 0              # SwiGLU width of attention blocks; 0 = floor(8d/3 / 64) * 64
    rope_theta: float = 10000.0
    # chunk memory: encoder, landmarks, K/V
    chunk_size: int = 64
    enc_layers: int = 1
    enc_heads: int = 8
    enc_kv_heads: int = 8
    enc_ffn: int = 0                 # 0 = floor(8d/3 / 64) * 64 (spec §1.2)
    landmark: str = "cls"            # "cls" (CLS output) or "mean" (mean of the encoded chunk)
    # retrieval + HSA
    topk: int = 8
    hsa_heads: int = 8               # query heads
    hsa_kv_heads: int = 1            # KV heads = selection groups
    hsa_head_dim: int = 32
    retrieval_dim: int = 256         # total, split over hsa_kv_heads groups
    fusion: str = "stick_breaking"   # or "softmax"
    sm_n: float = 0.0                # softmax-off-by-one constant (1.0 = on)
    score_bias: float = 0.0          # initial value of the learnable bias added to retrieval scores
    select_noise: float = 0.0        # training only: Gumbel noise scale on scores when choosing the top-k
    # misc
    norm_eps: float = 1e-5
    init_std: float = 0.02
    tie_embeddings: bool = True

    def __post_init__(self):
        def bad(msg):
            raise BadInputError(f"RambaConfig: {msg}")
        if self.arch not in ARCHS:
            bad(f"unknown arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        for name in ("vocab_size", "d_model", "d_state", "mamba_headdim", "expand", "d_conv", "n_groups",
                     "ssd_chunk", "attn_heads", "chunk_size", "topk", "hsa_heads", "hsa_kv_heads",
                     "hsa_head_dim", "retrieval_dim", "enc_heads", "enc_kv_heads", "swa_window"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                bad(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("n_lower", "n_upper", "n_hsa", "enc_layers", "mlp_hidden", "enc_ffn"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if self.mamba_segment is not None and (not isinstance(self.mamba_segment, int) or self.mamba_segment < 0):
            bad(f"mamba_segment must be None or a non-negative integer, got {self.mamba_segment!r}")
        if self.reset_tail is not None and (not isinstance(self.reset_tail, int) or not self.mamba_segment
                                            or not 0 < self.reset_tail < self.mamba_segment):
            bad(f"reset_tail must be None or an integer in 1..mamba_segment-1 (needs mamba_segment), "
                f"got {self.reset_tail!r}")
        if self.fusion not in ("stick_breaking", "softmax"):
            bad(f"fusion must be 'stick_breaking' or 'softmax', got {self.fusion!r}")
        if not isinstance(self.select_noise, (int, float)) or self.select_noise < 0:
            bad(f"select_noise must be a non-negative number, got {self.select_noise!r}")
        if self.landmark not in ("cls", "mean"):
            bad(f"landmark must be 'cls' or 'mean', got {self.landmark!r}")
        if self.uses_mamba and (self.d_model * self.expand) % self.mamba_headdim:
            bad("d_model * expand must be a multiple of mamba_headdim")
        if self.uses_mamba and self.n_heads_ssm % self.n_groups:
            bad("the number of SSM heads must be a multiple of n_groups")
        if self.arch in ("swa-hsa", "transformer") and self.d_model % self.attn_heads:
            bad("d_model must be a multiple of attn_heads")
        if self.has_hsa:
            if self.n_hsa < 1:
                bad(f"arch {self.arch!r} needs n_hsa >= 1")
            if self.n_upper % self.n_hsa:
                bad(f"n_upper ({self.n_upper}) must be a multiple of n_hsa ({self.n_hsa})")
            if self.hsa_heads % self.hsa_kv_heads:
                bad("hsa_heads must be a multiple of hsa_kv_heads")
            if self.retrieval_dim % self.hsa_kv_heads:
                bad("retrieval_dim must be a multiple of hsa_kv_heads (one retrieval head per KV group)")
            if self.chunk_size % 16:
                bad(f"chunk_size must be a multiple of 16, got {self.chunk_size}")
            if self.enc_layers and (self.d_model % self.enc_heads or self.enc_heads % self.enc_kv_heads):
                bad("d_model must be a multiple of enc_heads, and enc_heads of enc_kv_heads")

    # derived sizes
    @property
    def has_hsa(self) -> bool:
        return self.arch in HSA_ARCHS

    @property
    def uses_mamba(self) -> bool:
        return self.arch in ("ramba", "mamba2")

    @property
    def d_inner(self) -> int:
        return self.d_model * self.expand

    @property
    def n_heads_ssm(self) -> int:
        return self.d_inner // self.mamba_headdim

    @property
    def ffn_width(self) -> int:
        return self.enc_ffn or (self.d_model * 8 // 3) // 64 * 64

    @property
    def mlp_width(self) -> int:
        return self.mlp_hidden or (self.d_model * 8 // 3) // 64 * 64

    @property
    def upper_per_hsa(self) -> int:
        return self.n_upper // self.n_hsa if self.has_hsa else self.n_upper

    # serialisation
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RambaConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BadInputError(f"RambaConfig: unknown key(s) {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RambaConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInputError(f"RambaConfig: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise BadInputError("RambaConfig: JSON must be an object")
        return cls.from_dict(d)

    def replace(self, **kw) -> "RambaConfig":
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "RambaConfig":
        if name not in PRESETS:
            raise BadInputError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)


PRESETS: dict[str, RambaConfig] = {
    # CPU-friendly (~3M parameters, byte vocabulary): tests, CI and the shipped checkpoint.
    "tiny": RambaConfig(),
    "small": RambaConfig(d_model=512, n_lower=6, n_upper=6, n_hsa=2, hsa_heads=16, hsa_head_dim=32,
                         retrieval_dim=512, enc_heads=8, enc_kv_heads=8, attn_heads=8),
    # The paper's 370M (configs/ramba-370M/config_enc1_4096.json, spec §1.1/§2).
    "370m": RambaConfig(vocab_size=50280, d_model=1024, n_lower=24, n_upper=24, n_hsa=3, d_state=128,
                        mamba_headdim=64, expand=2, ssd_chunk=256, chunk_size=64, topk=8, hsa_heads=16,
                        hsa_kv_heads=1, hsa_head_dim=64, retrieval_dim=1024, enc_layers=1, enc_heads=16,
                        enc_kv_heads=16, attn_heads=16),
    # The 2.7B configuration's shape (ramba_3b_*.json: Mamba2-2.7B backbone, 4 HSA layers).
    "3b": RambaConfig(vocab_size=50288, d_model=2560, n_lower=32, n_upper=32, n_hsa=4, d_state=128,
                      mamba_headdim=64, expand=2, ssd_chunk=256, chunk_size=64, topk=8, hsa_heads=80,
                      hsa_kv_heads=5, hsa_head_dim=32, retrieval_dim=2560, enc_layers=2, enc_heads=80,
                      enc_kv_heads=80, attn_heads=32, init_std=0.01),
}
