"""Checkpoints: a folder with config.json + model.safetensors (never pickle), and the converter from the
authors' state-dict naming (see ramba/convert.py)."""
from __future__ import annotations

from pathlib import Path

import torch

from ramba.atomic import atomic_write_bytes
from ramba.config import PRESETS, RambaConfig
from ramba.errors import BadInputError, CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def state_dict_for_saving(model) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; the tied LM head is stored once (as the embedding)."""
    sd = model.state_dict()
    if model.cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def save_pretrained(model, path) -> None:
    from safetensors.torch import save
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": "ramba", "arch": model.cfg.arch}
    atomic_write_bytes(path / WEIGHTS_FILE, save(state_dict_for_saving(model), metadata=meta))
    atomic_write_bytes(path / CONFIG_FILE, (model.cfg.to_json() + "\n").encode())
    if model.cfg.vocab_size == 256:  # the byte tokenizer in the HF format, for tools that load it by folder
        from ramba.tasks.hf_byte_tokenizer import write_tokenizer_files
        write_tokenizer_files(path)


def load_config(path) -> RambaConfig:
    f = Path(path) / CONFIG_FILE
    if not f.is_file():
        raise CheckpointError(f"{str(path)!r} has no {CONFIG_FILE}: not a RAMba checkpoint folder")
    try:
        return RambaConfig.from_json(f.read_text())
    except (BadInputError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{str(f)!r} is corrupt or from another version: {e}") from None


def load_state_dict(path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    f = Path(path) / WEIGHTS_FILE
    if not f.is_file():
        raise CheckpointError(f"{str(path)!r} has no {WEIGHTS_FILE}")
    try:
        return load_file(str(f))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(f)!r} is corrupt or truncated ({str(e).splitlines()[0][:200]})") from None


def load_into(model, sd: dict[str, torch.Tensor], source: str) -> None:
    """Strict load with one-line errors naming what does not match the model's config."""
    expected = state_dict_for_saving_shapes(model)
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match config.json (missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})")
    for k, shape in expected.items():
        if tuple(sd[k].shape) != shape:
            raise CheckpointError(f"{source}: {k} has shape {tuple(sd[k].shape)}, config.json implies {shape}")
    model.load_state_dict(sd, strict=False)   # lm_head is tied to the embedding when absent


def state_dict_for_saving_shapes(model) -> dict[str, tuple]:
    sd = model.state_dict()
    if model.cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: tuple(v.shape) for k, v in sd.items()}


def from_pretrained(path_or_preset: str, device="cpu", dtype=None, seed: int = 0):
    """A checkpoint folder, or a preset name (random init with a fixed seed, for plumbing and speed runs)."""
    from ramba.model import RambaModel
    p = Path(str(path_or_preset)).expanduser()
    if p.is_dir():
        cfg = load_config(p)
        sd = load_state_dict(p)
        with torch.device("meta"):
            model = RambaModel(cfg)
        model = model.to_empty(device="cpu")
        load_into(model, sd, str(p))
        if cfg.tie_embeddings:
            model.lm_head.weight = model.embed.weight
    elif str(path_or_preset) in PRESETS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = RambaModel(RambaConfig.from_preset(str(path_or_preset)))
    else:
        raise CheckpointError(f"{str(path_or_preset)!r} is neither a checkpoint folder nor a preset "
                              f"({', '.join(PRESETS)})")
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval()
