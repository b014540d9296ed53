"""Each bad input: exit code 2, one line `error: ...` naming the problem, and nothing written."""
import os
import subprocess
import sys
import time

import pytest

from .cli_helpers import run_cli as _cli



def _bad(argv, capsys, must_mention):
    code, out, err = _cli(argv, capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert must_mention.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.mark.parametrize("args,mention", [
    (["--model", "gpt4"], "unknown model backend 'gpt4'"),
    (["--model", "hf:/no/such/dir"], "no config.json"),
    (["--length", "64Q"], "malformed length '64Q'"),
    (["--length", "-1"], "'-1'"),
    (["--length", "0"], "must be positive"),
    (["--length", "16"], "16"),                       # shorter than the passkey template
    (["--depths", "1.5"], "outside [0, 1]"),
    (["--tokenizer", "/no/such/tokenizer"], "tokenizer path"),
])
def test_bad_passkey_input(tmp_path, capsys, args, mention):
    out = tmp_path / "out"
    _bad(["passkey", "--model", "oracle", "--samples", "1", "--length", "1K", "--out", str(out), *args],
         capsys, mention)
    assert not out.exists()  # nothing written


def test_too_small_names_the_fix(tmp_path, capsys):
    line = _bad(["passkey", "--model", "oracle", "--length", "16", "--out", str(tmp_path / "o")], capsys, "16")
    assert any(w in line for w in ("length", "template", "fit"))


def test_unknown_task_in_run_config(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"task: needle_in_a_sock\nmodel: oracle\nlengths: 1K\nout: {tmp_path / 'out'}\n")
    _bad(["run", str(cfg)], capsys, "unknown task 'needle_in_a_sock'")
    assert not (tmp_path / "out").exists()


def test_folder_with_other_config_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["passkey", "--model", "oracle", "--length", "1K", "--depths", "0.5", "--samples", "1",
            "--out", str(out), "--no-report", "--no-progress"]
    code, stdout, err = _cli(base, capsys)
    assert code in (0, None), err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _bad(base[:-2] + ["--seed", "7", "--no-report"], capsys, "different config")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    # the same config resumes (nothing left to do) instead of failing
    code, stdout, err = _cli(base, capsys)
    assert code in (0, None) and "results:" in stdout


def test_run_config_then_report_with_baseline(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'model = "oracle"\nlengths = "1K,2K"\ndepths = 2\nsamples = 2\nout = "{tmp_path / "now"}"\n')
    code, out, err = _cli(["run", str(cfg), "--no-progress"], capsys)
    assert code in (0, None), err
    assert "report.html" in out and (tmp_path / "now" / "report.md").exists()
    base = tmp_path / "base"
    code, out, err = _cli(["passkey", "--model", "dummy", "--length", "1K,2K", "--depths", "2", "--samples", "2",
                           "--out", str(base), "--no-progress"], capsys)
    assert code in (0, None), err
    # dummy (0%) against the oracle (100%): n=4 per cell, the 95% Newcomb interval of the difference is
    # [-100, -30.7] points, below 0: a regression in all 4 cells, and exit 1 so CI can fail on it
    code, out, err = _cli(["report", str(base), "--baseline", str(tmp_path / "now")], capsys)
    assert code == 1, err
    assert "regressions: 4 cell(s)" in err and "report.html" in out
    assert (base / "plots" / "regression_vs_baseline.png").exists()


def test_report_of_missing_folder(tmp_path, capsys):
    _bad(["report", str(tmp_path / "nothing")], capsys, "does not exist")


def test_lists(capsys):
    code, out, _ = _cli(["tasks"], capsys)
    assert code in (0, None) and any(l.startswith("passkey ") for l in out.splitlines())
    code, out, _ = _cli(["models"], capsys)
    for name in ("dummy", "oracle", "hf", "ramba", "default model:"):
        assert name in out


def _dry_run_64m():
    code = ("import sys\nfrom ramba.evals.cli import main\ntry:\n    main(['passkey', '--length', '64M', "
            "'--dry-run'])\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
            "print('heavy:', sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules))\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(),
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout, time.perf_counter() - t0


def test_dry_run_64m_is_fast_and_light():
    """The plan for 64M prints in < 5 s (fresh interpreter, 2 cores) and imports no torch/transformers/matplotlib."""
    out, elapsed = _dry_run_64m()
    assert "67,108,864" in out and "samples" in out and "disk" in out and "memory" in out
    assert "heavy: []" in out, out
    assert elapsed < 5.0, elapsed


def test_default_model_switches_to_the_shipped_checkpoint(tmp_path, monkeypatch):
    from ramba.evals import defaults
    monkeypatch.chdir(tmp_path)
    if defaults.shipped_ramba_tiny() is None:
        assert defaults.default_model() == f"hf:{defaults.tiny_hf_dir()}"
    ck = tmp_path / "checkpoints" / "ramba-tiny"
    ck.mkdir(parents=True)
    (ck / "config.json").write_text("{}")
    assert defaults.default_model().startswith("hf:") or defaults.shipped_ramba_tiny() != ck  # weights missing
    (ck / "model.safetensors").write_bytes(b"x")
    assert defaults.default_model() == f"ramba:{ck.resolve()}"


def test_main_job_default_model_small(tmp_path, capsys, monkeypatch):
    """README command 1 with a smaller grid: the embedded default model, report paths printed."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(["passkey", "--length", "1K", "--depths", "1", "--samples", "1", "--no-progress"], capsys)
    assert code in (0, None), err
    html = [l for l in out.splitlines() if l.startswith("report:") and l.endswith("report.html")]
    assert html and (tmp_path / html[0].split(" ", 1)[1]).exists()
    assert str(tmp_path / "results") in str((tmp_path / html[0].split(" ", 1)[1]).resolve())


def test_train_hands_over_to_ramba_train(tmp_path, capsys, monkeypatch):
    import ramba.train.run as train_run
    calls = []
    monkeypatch.setattr(train_run, "train", lambda config, out, resume: calls.append((config, out, resume))
                        or tmp_path / "ckpt")
    code, out, err = _cli(["train", "cfg.yaml", "--out", str(tmp_path / "o"), "--no-resume"], capsys)
    assert code in (0, None), err
    assert calls == [("cfg.yaml", str(tmp_path / "o"), False)] and f"checkpoint: {tmp_path / 'ckpt'}" in out


def test_garbage_tokenizer_file(tmp_path, capsys):
    bad = tmp_path / "tok"
    bad.mkdir()
    (bad / "tokenizer.json").write_text("{ this is not a tokenizer")
    _bad(["passkey", "--model", "oracle", "--length", "1K", "--tokenizer", str(bad), "--out", str(tmp_path / "o")],
         capsys, "tokenizer")
    assert not (tmp_path / "o").exists()
