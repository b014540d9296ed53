"""CI regression check of the shipped model: a fresh CPU passkey run (other samples: seed 1) against the committed
baseline (reports/baselines/, seed 0). A broken model, kernel or scoring path drops accuracy far enough that the
Wilson intervals (n = 10 per length and convention) separate and the cell is flagged."""
from pathlib import Path

import pytest

from ramba.evals.config import RunConfig
from ramba.evals.runner import run
from ramba.reports.render import write_report

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baselines" / "passkey-ramba-tiny-cpu"
CHECKPOINT = ROOT / "checkpoints" / "ramba-tiny"


@pytest.mark.skipif(not (CHECKPOINT / "model.safetensors").exists(), reason="no shipped ramba-tiny checkpoint")
def test_shipped_model_has_no_regression(tmp_path, monkeypatch):
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(tmp_path / "cache"))
    cfg = RunConfig(model=f"ramba:{CHECKPOINT}", lengths="1K..4K", depths="5", samples=2, seed=1, device="cpu",
                    out=str(tmp_path / "now"))
    paths = write_report(run(cfg, progress=False), baseline=BASELINE)
    md = paths["md"].read_text()
    assert paths["regressions"] == 0, md[md.index("## Regression"):]
    assert md.count("| ok |") == 6  # 3 lengths x 2 conventions compared (8K is left to the baseline only)
