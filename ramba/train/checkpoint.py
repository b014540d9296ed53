"""Atomic checkpoints: the model folder (config.json + model.safetensors via save_pretrained) and the resumable
training state (optimizer, step, elapsed time, RNG) written beside it, each through a temp path + rename."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ramba.atomic import atomic_write_text
from ramba.errors import CheckpointError

STATE_FILE = "train_state.pt"


def save_model_dir(model, out: Path, extra_files: dict[str, str] | None = None) -> Path:
    """Write `model` to out/ atomically: build out.tmp/, then swap it in."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    for name, text in (extra_files or {}).items():
        (tmp / name).write_text(text)
    return swap_in_dir(tmp, out)


def swap_in_dir(tmp: Path, out: Path) -> Path:
    """Replace the folder `out` with the finished folder `tmp` (a reader sees the old folder or the new one)."""
    old = out.with_name(out.name + ".old")
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old)
    return out


def save_state(path: Path, state: dict) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"training state {path} is unreadable ({e}); delete it to start fresh") from None


def write_json_atomic(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def load_model_dir(path: Path, device="cpu"):
    """RambaModel from a checkpoint folder (config.json + model.safetensors)."""
    from ramba import RambaConfig, RambaModel
    path = Path(path)
    try:
        return RambaModel.from_pretrained(str(path), device=device)
    except ImportError:       # model package without ramba.checkpoint yet
        pass
    from safetensors.torch import load_file
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise CheckpointError(f"{path} needs config.json and model.safetensors")
    model = RambaModel(RambaConfig.from_json((path / "config.json").read_text()))
    missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise CheckpointError(f"{path}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    return model.to(device)
