"""The embedded default of the main job (`ramba-eval passkey` with no options) and where it finds models.

Default model: the shipped RAMba checkpoint `checkpoints/ramba-tiny/` when it exists, else a tiny random
transformers Llama (2 layers, byte vocabulary) that is built from a config and saved once to the cache dir.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]   # evals/ sits at the top of the checkout
SHIPPED_CHECKPOINT = "checkpoints/ramba-tiny"
TINY_HF_NAME = "tiny-llama-byte"

DEFAULT_TASK = "passkey"
DEFAULT_LENGTHS = "1K..8K"      # 1K, 2K, 4K, 8K
DEFAULT_DEPTHS = "5"           # 0, 0.25, 0.5, 0.75, 1
DEFAULT_SAMPLES = 2           # 40 samples: ~35 s for a ramba-tiny-sized model on 2 CPU cores

# The fallback default model: a random 2-layer Llama over the byte vocabulary (nothing to download).
TINY_HF_CONFIG = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1 << 16,
                      tie_word_embeddings=True)
_d, _i, _kv = 64, 128, 2 * 16  # hidden, MLP width, K (or V) width = kv heads x head dim
# fp32 parameters: tied embedding + per layer (q, o: d x d; k, v: d x kv; gate/up/down: 3 d x I; 2 norms) + final norm
TINY_HF_WEIGHT_BYTES = 4 * (256 * _d + 2 * (2 * _d * _d + 2 * _d * _kv + 3 * _d * _i + 2 * _d) + _d)


def cache_dir() -> Path:
    """$RAMBA_EVAL_CACHE, else $XDG_CACHE_HOME/ramba-eval, else ~/.cache/ramba-eval."""
    if os.environ.get("RAMBA_EVAL_CACHE"):
        return Path(os.environ["RAMBA_EVAL_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ramba-eval"


def shipped_checkpoints() -> list[Path]:
    """Checkpoint folders (config.json + model.safetensors) under <repo>/checkpoints and ./checkpoints."""
    found = []
    for root in {REPO_ROOT / "checkpoints", Path.cwd() / "checkpoints"}:
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
                    found.append(d.resolve())
    return sorted(set(found))


def shipped_ramba_tiny() -> Path | None:
    for root in (Path.cwd(), REPO_ROOT):
        d = root / SHIPPED_CHECKPOINT
        if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
            return d.resolve()
    return None


def tiny_hf_dir() -> Path:
    return cache_dir() / "models" / TINY_HF_NAME


def default_model() -> str:
    """The one place that decides the main job's model. Cheap: no torch import, nothing built."""
    ckpt = shipped_ramba_tiny()
    if ckpt is not None:
        return f"ramba:{ckpt}"
    return f"hf:{tiny_hf_dir()}"


def ensure_tiny_hf_model(path: Path | None = None) -> Path:
    """Build the random tiny Llama once (seeded, so every machine gets the same weights) and save it."""
    from ramba.tasks.hf_byte_tokenizer import FILES, write_tokenizer_files
    path = path or tiny_hf_dir()
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        if not all((path / f).is_file() for f in FILES):  # built before the tokenizer files existed
            write_tokenizer_files(path)
        return path
    import torch

    from ramba.hub_kernels import shield_hub_kernels
    shield_hub_kernels()
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()

    from ramba.evals.backend_hf import HINT_FILE
    from ramba.atomic import atomic_write_text

    cfg = LlamaConfig(**TINY_HF_CONFIG)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    write_tokenizer_files(tmp)   # lm-eval's `hf` model and AutoTokenizer load the folder's own tokenizer
    atomic_write_text(tmp / HINT_FILE, json.dumps({"tokenizer": "byte", "note": "random init, built by ramba-eval"}))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, path)  # atomic: a concurrent builder either wins or finds the finished folder
    except OSError:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return path
