"""Weight averaging of two checkpoints of one model (a two-member "model soup"): out = (1 - w) * A + w * B, per tensor.

Meant for two fine-tunes of one starting point (their weights lie in one basin, so the average keeps most of what
each learned); averaging unrelated models gives noise. The output keeps A's config, tokenizer and tensor dtypes and
is written atomically (a folder built beside the target, then renamed in)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ramba.errors import CheckpointError
from ramba.train.checkpoint import swap_in_dir

WEIGHTS = "model.safetensors"
# config fields that may differ between fine-tunes of one model (bookkeeping, not shape or behaviour)
_CONFIG_FREE = {"name", "init_from", "_name_or_path", "transformers_version"}


def _read(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file
    if not (folder / "config.json").is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder} is not a checkpoint folder: it needs config.json and {WEIGHTS}")
    return json.loads((folder / "config.json").read_text()), load_file(str(folder / WEIGHTS))


def average_checkpoints(a: Path, b: Path, weight: float, out: Path) -> Path:
    """Write (1 - weight) * a + weight * b to the folder `out`; both must be the same model (config and tensors)."""
    a, b, out = Path(a), Path(b), Path(out)
    if not 0.0 <= weight <= 1.0:
        raise CheckpointError(f"--weight {weight} must lie in [0, 1] (the share of the second checkpoint)")
    if out.resolve() in (a.resolve(), b.resolve()):
        raise CheckpointError(f"--out {out} would overwrite an input checkpoint; pick a new folder")
    cfg_a, wa = _read(a)
    cfg_b, wb = _read(b)
    differ = sorted(k for k in set(cfg_a) | set(cfg_b) if k not in _CONFIG_FREE and cfg_a.get(k) != cfg_b.get(k))
    if differ:
        raise CheckpointError(f"{a} and {b} are different models (config differs in {', '.join(differ)}); "
                              "only fine-tunes of one model can be averaged")
    if wa.keys() != wb.keys():
        only = sorted(set(wa) ^ set(wb))[:5]
        raise CheckpointError(f"{a} and {b} hold different tensors (e.g. {', '.join(only)})")
    bad = [k for k in wa if wa[k].shape != wb[k].shape]
    if bad:
        raise CheckpointError(f"{a} and {b} differ in shape at {bad[0]}: {tuple(wa[bad[0]].shape)} vs "
                              f"{tuple(wb[bad[0]].shape)}")
    # fp32 arithmetic, then back to A's dtype (bf16 checkpoints stay bf16)
    avg = {k: ((1.0 - weight) * wa[k].float() + weight * wb[k].float()).to(wa[k].dtype).contiguous() for k in wa}
    return _write(a, avg, out)


def _write(template: Path, tensors: dict[str, torch.Tensor], out: Path) -> Path:
    from safetensors.torch import save_file
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in template.iterdir():          # config and tokenizer files; not A's card or plots, which describe A
        if f.is_file() and (f.suffix == ".json" or f.name.startswith("tokenizer")):
            shutil.copy2(f, tmp / f.name)
    save_file(tensors, str(tmp / WEIGHTS))
    return swap_in_dir(tmp, out)
