"""Every shipped checkpoint (checkpoints/<name>/) is complete and honest about its origin: weights + config + model
card + curves, the arch its recipe (configs/<name>.yaml) names, the step count its training record says, a size that
keeps the repository small, and it loads and runs on CPU."""
import json
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "checkpoints").glob("*") if (p / "config.json").is_file())
MAX_BYTES = 16 << 20   # a few-million-parameter fp32 model; anything larger does not belong in git


def test_the_default_and_the_baselines_are_shipped():
    assert {p.name for p in SHIPPED} >= {"ramba-tiny", "mamba2-tiny", "transformer-tiny", "swa-hsa-tiny"}


@pytest.mark.parametrize("ckpt", SHIPPED, ids=lambda p: p.name)
def test_checkpoint_matches_its_recipe_and_record(ckpt):
    for name in ("model.safetensors", "MODEL_CARD.md", "curves.png"):
        assert (ckpt / name).is_file(), f"{ckpt.name} lacks {name}"
    assert (ckpt / "model.safetensors").stat().st_size < MAX_BYTES
    cfg = json.loads((ckpt / "config.json").read_text())
    recipe = yaml.safe_load((ROOT / "configs" / f"{ckpt.name}.yaml").read_text())
    assert cfg["arch"] == recipe["model"]["overrides"]["arch"]
    card = (ckpt / "MODEL_CARD.md").read_text()
    # a recipe in parts (configs/<name>-ft.yaml from part 1's weights, -ft2 from part 2's, -p4 from part 3's, -p5 from the parts-1-4 average)
    # has a record per part
    parts = [ckpt.name] + [f"{ckpt.name}-{s}" for s in ("ft", "ft2")
                           if (ROOT / "configs" / f"{ckpt.name}-{s}.yaml").is_file()]
    # parts 4 and 5 (-p4, -p5, each averaged with its start) where the card says the weights include them; the
    # default model's include both
    for late in ("p4", "p5"):
        if f"configs/{ckpt.name}-{late}.yaml" in card or ckpt.name == "ramba-tiny":
            parts.append(f"{ckpt.name}-{late}")
    for part in parts:
        summary = json.loads((ROOT / "benchmarks" / "records" / f"train-{part}" / "summary.json").read_text())
        assert summary["arch"] == cfg["arch"]
        assert f"configs/{part}.yaml" in card and f"{summary['steps']} steps" in card, part


@pytest.mark.parametrize("ckpt", SHIPPED, ids=lambda p: p.name)
@torch.no_grad()
def test_checkpoint_loads_and_runs_on_cpu(ckpt):
    from ramba.train.checkpoint import load_model_dir
    model = load_model_dir(ckpt, device="cpu").eval()
    ids = torch.randint(0, 256, (1, 192), generator=torch.Generator().manual_seed(0))
    logits = model(ids)
    assert logits.shape == (1, 192, model.cfg.vocab_size)
    assert torch.isfinite(logits).all()
