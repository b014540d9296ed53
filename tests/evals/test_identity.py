"""One checkpoint, one run id; config.yaml holds no machine path; a replaced checkpoint is not resumed."""
import json
import shutil

import pytest

from ramba.errors import BadInputError
from ramba.evals.config import RunConfig, load_run_config
from ramba.evals.defaults import REPO_ROOT
from ramba.evals.identity import canonical_model_spec, weights_fingerprint
from ramba.evals.runner import run

CKPT = REPO_ROOT / "checkpoints" / "ramba-tiny"
needs_ckpt = pytest.mark.skipif(not (CKPT / "model.safetensors").exists(), reason="no shipped ramba-tiny")


@needs_ckpt
def test_three_spellings_one_run_id(tmp_path, monkeypatch):
    from ramba.evals.defaults import default_model
    spellings = [default_model(), "ramba:checkpoints/ramba-tiny", f"ramba:{CKPT}/", "ramba:./checkpoints/ramba-tiny"]
    monkeypatch.chdir(REPO_ROOT)
    ids = {RunConfig(model=m, lengths="1K").run_id for m in spellings}
    monkeypatch.chdir(tmp_path)  # from elsewhere, the repo-relative spelling still names the shipped checkpoint
    ids |= {RunConfig(model=m, lengths="1K").run_id for m in spellings[:3]}
    assert len(ids) == 1, ids
    assert canonical_model_spec(f"ramba:{CKPT}") == "ramba:checkpoints/ramba-tiny"


def test_non_paths_are_kept_and_home_is_tilde(tmp_path, monkeypatch):
    assert canonical_model_spec("ramba:tiny") == "ramba:tiny" and canonical_model_spec("dummy") == "dummy"
    home = tmp_path / "home"
    (home / "models" / "m").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert canonical_model_spec(f"hf:{home}/models/m") == "hf:~/models/m"
    assert RunConfig(model=f"hf:{home}/models/m").run_id == RunConfig(model="hf:~/models/m").run_id


def test_config_yaml_has_no_machine_path_and_resumes_where_it_lies(tmp_path):
    out = tmp_path / "deep" / "r"
    run(RunConfig(model="oracle", lengths="1K", depths="0.5", samples=1, out=str(out), report=False), progress=False)
    text = (out / "config.yaml").read_text()
    assert str(tmp_path) not in text and "out:" not in text
    assert "out" not in json.loads((out / "meta.json").read_text())["config"]
    moved = tmp_path / "moved"
    shutil.move(str(out), moved)
    cfg = load_run_config(moved / "config.yaml")
    assert cfg.out_dir() == moved
    run(cfg, progress=False)  # resumes (nothing left to do) instead of refusing a "different config"
    assert len((moved / "records.jsonl").read_text().splitlines()) == 2


def test_file_without_model_gets_the_passkey_defaults(tmp_path):
    from ramba.evals import defaults
    p = tmp_path / "c.yaml"
    p.write_text("task: passkey\n")
    cfg = load_run_config(p)
    ref = RunConfig(model=defaults.default_model(), lengths=defaults.DEFAULT_LENGTHS, depths=defaults.DEFAULT_DEPTHS,
                    samples=defaults.DEFAULT_SAMPLES)
    assert cfg == ref and cfg.model != "dummy"


def test_bools_must_be_bools():
    with pytest.raises(BadInputError, match="report must be true or false"):
        RunConfig(model="oracle", report="no")
    assert RunConfig(model="oracle", report=False).report is False


def test_replaced_weights_are_not_resumed(tmp_path):
    ck = tmp_path / "ck"
    from ramba.model import RambaModel
    RambaModel.from_pretrained("tiny").save_pretrained(ck)
    cfg = RunConfig(model=f"ramba:{ck}", lengths="300", depths="0.5", samples=1, device="cpu", segment=128,
                    out=str(tmp_path / "r"), report=False)
    run(cfg, progress=False)
    fp = weights_fingerprint(ck)
    assert json.loads((tmp_path / "r" / "meta.json").read_text())["model_fingerprint"] == fp
    data = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(data[:-4] + bytes(4))  # "retrained" under the same path
    assert weights_fingerprint(ck) != fp
    with pytest.raises(BadInputError, match="other weights under the same model path"):
        run(cfg, progress=False)
