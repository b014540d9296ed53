"""Malformed input, as a new user types it: every case exits 2 with ONE line `error: ...` that names the problem,
no traceback, and no new file anywhere under the test's folder (results, cache, reports, current folder).

The cases are the ones issue 12 found (read-only --out, an absent or unknown device, a model with fewer positions
than the prompt, YAML strings read as booleans, dry runs that did not check the model, report --baseline across
tasks) and many more."""
import json
import os
import subprocess

import pytest

from ramba.evals.cli import main

OK = ["--model", "oracle", "--samples", "1", "--length", "1K", "--depths", "0.5", "--no-progress"]


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A clean folder to run in, with its own cache, and the inputs the cases point at."""
    w = tmp_path / "w"
    w.mkdir()
    monkeypatch.chdir(w)
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(w / "cache"))
    monkeypatch.delenv("RAMBA_EVAL_FAULT", raising=False)
    (w / "afile").write_text("x")
    (w / "junk").mkdir()
    (w / "junk" / "notes.txt").write_text("not a run")
    tok = w / "badtok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{ this is not a tokenizer")
    nontok = w / "hf-no-tokenizer"
    nontok.mkdir()
    (nontok / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 256}))
    return w


@pytest.fixture(scope="module")
def gpt2_512(tmp_path_factory):
    """A GPT-2 with 512 learned positions (byte vocabulary): at 1K its embedding lookup used to IndexError."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    d = tmp_path_factory.mktemp("gpt2-512")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=512, n_embd=32, n_layer=1, n_head=2, bos_token_id=None,
                               eos_token_id=None)).save_pretrained(d)
    (d / "ramba_eval.json").write_text(json.dumps({"tokenizer": "byte"}))
    return d


def _cfg(world, name, text):
    p = world / name
    p.write_text(text)
    return str(p)


def _bad(argv, capsys, mention, world):
    before = _tree(world)
    with pytest.raises(SystemExit) as e:
        main(argv)
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert e.value.code == 2, (argv, cap.out, cap.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), cap.err
    assert "Traceback" not in cap.err + cap.out and cap.out == ""
    assert mention.lower() in lines[0].lower(), lines[0]
    assert _tree(world) == before, f"{argv} wrote files"
    return lines[0]


def _cuda():
    import torch
    return torch.cuda.is_available()


PASSKEY = [
    # models
    (["--model", "gpt4"], "unknown model backend 'gpt4'"),
    (["--model", "hf:/no/such/dir"], "no config.json"),
    (["--model", "hf:"], "empty ID"),
    (["--model", "ramba:/no/such/ckpt"], "neither a checkpoint folder nor a preset"),
    (["--model", "ramba:tinyy"], "neither a checkpoint folder nor a preset"),
    (["--model", "ramba:junk"], "not a RAMba checkpoint"),
    (["--model", "hf:hf-no-tokenizer"], "no tokenizer files"),
    # lengths, depths, counts
    (["--length", "64Q"], "malformed length '64Q'"),
    (["--length", "-1"], "'-1'"),
    (["--length", "0"], "must be positive"),
    (["--length", "16"], "16"),                                  # shorter than the passkey template
    (["--length", "4K..1K"], "runs backwards"),
    (["--length", "4K..12K"], "power of two"),
    (["--length", "1K,,2K"], "empty entry"),
    (["--length", "128G"], "64G-token limit"),
    (["--depths", "1.5"], "outside [0, 1]"),
    (["--depths", "abc"], "malformed depth"),
    (["--depths", "nan"], "outside [0, 1]"),
    (["--samples", "0"], "samples must be a positive integer"),
    (["--samples", "abc"], "invalid value for '--samples'"),
    (["--seed", "-1"], "seed must be a non-negative integer"),
    (["--segment", "0"], "segment must be a positive token count"),
    (["--lenght", "1K"], "no such option"),
    # tokenizers
    (["--tokenizer", "/no/such/tokenizer"], "tokenizer path"),
    (["--tokenizer", "badtok"], "tokenizer"),
    # devices
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "gpu"], "unknown device 'gpu'"),
    (["--device", "cuda:x"], "unknown device"),
    pytest.param(["--device", "cuda"], "device 'cuda' is not available",
                 marks=pytest.mark.skipif(_cuda(), reason="this machine has CUDA")),
    pytest.param(["--device", "cuda:7"], "cuda:7",
                 marks=pytest.mark.skipif(_cuda(), reason="this machine has CUDA")),
    # output folders
    (["--out", "afile"], "is a file"),
    (["--out", "afile/sub"], "is a file"),
    (["--out", "junk"], "holds no ramba-eval run"),
    (["--out", "/proc/ramba-eval-out"], "cannot be written"),     # refuses new files, even for root
]


@pytest.mark.parametrize("args,mention", PASSKEY)
def test_bad_passkey_input(world, capsys, args, mention):
    out = ["--out", "out"] if "--out" not in args else []
    _bad(["passkey", *OK, *out, *args], capsys, mention, world)


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("args,mention", [
    (["--model", "ramba:/no/such/ckpt"], "neither a checkpoint folder nor a preset"),
    (["--model", "hf:/no/such/dir"], "no config.json"),
    (["--tokenizer", "/no/such/tokenizer"], "does not exist"),
    (["--model", "hf:hf-no-tokenizer"], "no tokenizer files"),
    (["--device", "tpu"], "unknown device"),
])
def test_dry_run_checks_what_the_run_checks(world, capsys, args, mention, dry):
    _bad(["passkey", *OK, "--out", "out", *args, *(["--dry-run"] if dry else [])], capsys, mention, world)


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("length,mention", [("1K", "longest prompt has 1,024 tokens"),
                                            ("512", "needs 517"),           # the prompt fits, its answer does not
                                            ("1K,2K", "at most 512")])
def test_prompt_longer_than_the_model_positions(world, capsys, gpt2_512, length, mention, dry):
    line = _bad(["passkey", "--model", f"hf:{gpt2_512}", "--length", length, "--samples", "1", "--depths", "0.5",
                 "--out", "out", "--no-progress", *(["--dry-run"] if dry else [])], capsys, mention, world)
    assert "512 positions" in line


def _read_only_folder(world):
    """A folder writes fail in: a read-only tmpfs mount (root), else permission bits (non-root)."""
    d = world / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        return d, lambda: d.chmod(0o755)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("root without mount(2) here: cannot make a read-only folder")
    return d, lambda: subprocess.run(["umount", str(d)], check=True)


def test_out_on_a_read_only_folder(world, capsys):
    d, undo = _read_only_folder(world)
    try:
        line = _bad(["passkey", *OK, "--out", str(d / "results")], capsys, "cannot be written", world)
        assert "read-only" in line or "not writable" in line
        _bad(["passkey", *OK, "--out", str(d / "results"), "--dry-run"], capsys, "cannot be written", world)
    finally:
        undo()


def test_not_enough_disk(world, capsys, monkeypatch):
    import shutil
    from ramba.evals import checks
    real = shutil.disk_usage
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda p: real(p)._replace(free=100_000))
    _bad(["passkey", *OK, "--out", "out"], capsys, "not enough free disk", world)
    _bad(["passkey", *OK[:-1], "--length", "256K", "--out", "out", "--dry-run"], capsys, "prompt cache", world)


def test_bad_fault_setting(world, capsys, monkeypatch):
    monkeypatch.setenv("RAMBA_EVAL_FAULT", "make_it_worse")
    _bad(["passkey", *OK, "--out", "out"], capsys, "RAMBA_EVAL_FAULT", world)


def test_folder_of_another_config(world, capsys):
    with pytest.raises(SystemExit) as e:
        main(["passkey", *OK, "--out", "out", "--no-report"])
    assert e.value.code == 0
    capsys.readouterr()
    _bad(["passkey", *OK, "--out", "out", "--seed", "7"], capsys, "different config", world)


RUN_CONFIGS = [
    ("missing.yaml", None, "does not exist"),
    ("c.txt", "task: passkey\n", "must end in .yaml"),
    ("c.yaml", "a: [\n", "cannot parse"),
    ("c.yaml", "- 1\n", "mapping"),
    ("c.yaml", "lenghts: 1K\nmodel: oracle\n", "unknown run config key"),
    ("c.yaml", "model: oracle\nlengths: 1K\nreport: \"no\"\n", "report must be true or false, got 'no'"),
    ("c.yaml", "model: oracle\nlengths: 1K\ntrust_remote_code: \"yes\"\n", "trust_remote_code must be true or false"),
    ("c.yaml", "model: oracle\nlengths: 1K\ndevice: tpu\n", "unknown device 'tpu'"),
    ("c.yaml", "model: 5\nlengths: 1K\n", "model must be BACKEND[:ID]"),
    ("c.yaml", "model: oracle\nlengths: 1K\ntokenizer: 3\n", "tokenizer must be a non-empty string"),
    ("c.yaml", "task: needle_in_a_sock\nmodel: oracle\nlengths: 1K\n", "unknown task 'needle_in_a_sock'"),
    ("c.toml", "model = \"oracle\"\nsamples = \"2\"\n", "samples must be a positive integer"),
    # suites: every run is checked before the first one starts
    ("s.yaml", "runs:\n  - {task: passkey, model: oracle, lengths: 1K}\n  - {task: nosuch, model: oracle}\n",
     "unknown task 'nosuch'"),
    ("s.yaml", "runs:\n  - {task: passkey, model: oracle}\n  - {task: passkey, model: dummy}\n", "two runs named"),
    ("s.yaml", "runs:\n  - {task: passkey, model: oracle, out: x}\n", "cannot set `out`"),
    ("s.yaml", "runs: []\n", "non-empty list"),
    ("s.yaml", "runs:\n  - {task: passkey, model: oracle}\nextra: 1\n", "unknown suite key"),
    ("s.yaml", "runs:\n  - {task: passkey, model: oracle, lengths: 64Q}\n", "suite run 'passkey': malformed length"),
]


@pytest.mark.parametrize("name,text,mention", RUN_CONFIGS)
def test_bad_run_config(world, capsys, name, text, mention):
    path = _cfg(world, name, text) if text is not None else str(world / name)
    _bad(["run", path, "--out", "out", "--no-progress"], capsys, mention, world)


def test_run_options_that_do_not_apply(world, capsys):
    single = _cfg(world, "c.yaml", "model: oracle\nlengths: 1K\n")
    suite = _cfg(world, "s.yaml", "runs:\n  - {task: passkey, model: oracle, lengths: 1K}\n")
    _bad(["run", single, "--only", "passkey"], capsys, "single run config", world)
    _bad(["run", suite, "--only", "vt"], capsys, "has no run(s) vt", world)


@pytest.fixture
def two_runs(world, capsys):
    """A passkey run and a niah_single_1 run (oracle, tiny), for report and compare cases."""
    for task, out in (("passkey", "pk"), ("niah_single_1", "niah")):
        path = _cfg(world, f"{out}.yaml", f"task: {task}\nmodel: oracle\nlengths: 1K\ndepths: 0.5\nsamples: 1\n"
                                          "report: false\n")
        with pytest.raises(SystemExit) as e:
            main(["run", path, "--out", out, "--no-progress"])
        assert e.value.code == 0
    capsys.readouterr()
    return world / "pk", world / "niah"


def test_report_and_compare_refusals(world, capsys, two_runs):
    pk, niah = two_runs
    _bad(["report", "nothing"], capsys, "does not exist", world)
    _bad(["report", "junk"], capsys, "not a results folder", world)
    _bad(["report", str(pk), "--baseline", str(niah)], capsys, "runs of different tasks", world)
    _bad(["report", str(pk), "--out", "/proc/ramba-report"], capsys, "cannot be written", world)
    _bad(["compare", str(niah), str(pk)], capsys, "runs of different tasks", world)
    _bad(["compare", str(pk), "nothing"], capsys, "does not exist", world)
    _bad(["compare", str(pk), str(pk), "--max-slowdown", "0.5"], capsys, "factor above 1", world)
    _bad(["compare", str(pk), str(pk), "--tasks", "vt"], capsys, "no run of task(s) vt", world)
    _bad(["history", str(pk), "--labels", "a,b"], capsys, "one per run", world)
    _bad(["history", "nothing"], capsys, "does not exist", world)
    _bad(["nosuchcommand"], capsys, "no such command", world)


def test_report_baseline_other_tokenizer(world, capsys, two_runs):
    pk, _ = two_runs
    other = world / "pk2"
    import shutil
    shutil.copytree(pk, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["backend"].update(tokenizer="hf:gpt2", tokenizer_fingerprint="something-else")
    (other / "meta.json").write_text(json.dumps(meta))
    _bad(["report", str(other), "--baseline", str(pk)], capsys, "different tokenizers", world)
    _bad(["compare", str(pk), str(other)], capsys, "different tokenizers", world)
