"""README.md opens with the two set-up commands, and .ci/run runs exactly those; the CLI it documents exists."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks():
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_opens_with_two_commands():
    text = (ROOT / "README.md").read_text()
    first, second = _blocks()[:2]
    assert text.index(first) < text.index("## ")  # before any section
    assert first.strip() == 'pip install -c constraints-cpu.txt -e ".[dev]" && ramba-eval passkey'
    assert second.strip() == 'pip install -c constraints-cpu.txt -e ".[dev]" && python -m pytest'


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    install, test = _blocks()[1].strip().split(" && ")
    assert f"INSTALL='{install}'" in ci and f"TEST='{test}'" in ci
    assert "set -euo pipefail" in ci and '-eq 5' in ci


def test_documented_commands_exist():
    from ramba.evals.cli import app
    import typer.main
    names = set(typer.main.get_command(app).commands)
    cli_section = (ROOT / "README.md").read_text().split("## CLI")[1].split("\n## ")[0]
    documented = set(re.findall(r"^ramba-eval ([a-z-]+)", cli_section, flags=re.M))
    assert documented and documented <= names, documented - names


def test_ci_fails_when_pytest_collects_nothing(tmp_path):
    """.ci/run's own logic, with the install stubbed out and pytest pointed at an empty folder (exit 5)."""
    import subprocess
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r"^INSTALL=.*$", ci, flags=re.M).group(0)
    test = re.search(r"^TEST=.*$", ci, flags=re.M).group(0)
    browser = re.search(r"^BROWSER=.*$", ci, flags=re.M).group(0)
    gate = re.search(r"^GATE=.*$", ci, flags=re.M).group(0)
    (tmp_path / ".ci").mkdir()
    (tmp_path / "empty").mkdir()
    script = ci.replace(install, "INSTALL='true'").replace(test, "TEST='python -m pytest -q -p no:cacheprovider empty'")
    script = script.replace(browser, "BROWSER='true'").replace(gate, "GATE='echo gate-ran'")
    (tmp_path / ".ci" / "run").write_text(script)
    r = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "collected no tests" in r.stderr, (r.returncode, r.stderr)
    assert "gate-ran" not in r.stdout  # the gate runs only after the tests passed


def test_ci_runs_the_gate_after_the_tests_and_fails_with_it(tmp_path):
    """.ci/run's order: tests, then the gate; a failing gate fails CI with its exit code."""
    import subprocess
    ci = (ROOT / ".ci" / "run").read_text()
    for key, value in (("INSTALL", "true"), ("BROWSER", "true"), ("TEST", "echo tests-ran"),
                       ("GATE", "echo gate-ran; false")):
        ci = ci.replace(re.search(rf"^{key}=.*$", ci, flags=re.M).group(0), f"{key}='{value}'")
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text(ci)
    r = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout.index("tests-ran") < r.stdout.index("gate-ran"), (r.stdout, r.stderr)
    assert "regression gate exit code 1" in r.stderr


def _ways() -> list[list[str]]:
    """The three commands of README's "Three ways in" block, shell-split ($(...) left as a word)."""
    import shlex
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Three ways in.*?```console\n(.*?)```", text, flags=re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _opt(args: list[str], name: str, value: str) -> list[str]:
    i = args.index(name)
    return args[:i + 1] + [value] + args[i + 2:]


def test_readme_way_1_our_cli(tmp_path, monkeypatch):
    import json
    from ramba.evals.cli import main
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(tmp_path / "cache"))
    args = _ways()[0]
    assert args[:2] == ["ramba-eval", "ruler"]
    args = _opt(_opt(args, "--length", "1K"), "--model", "dummy")   # the shipped model works too; dummy is quick
    try:
        main(args[1:] + ["--depths", "1", "--samples", "1", "--out", str(tmp_path / "s"), "--no-progress"])
    except SystemExit as e:   # typer exits 0 at the end of a command
        assert e.code == 0
    assert json.loads((tmp_path / "s" / "suite.json").read_text())["tasks"] == ["niah_multikey_2", "vt"]


def _lm_eval_cli(argv, monkeypatch):
    import sys
    from lm_eval.__main__ import cli_evaluate
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sys, "argv", argv)
    cli_evaluate()


def test_readme_way_2_lm_eval_with_our_model(tmp_path, monkeypatch):
    import json
    from ramba.evals.lm_eval_plugin import complete_args
    args = _ways()[1]
    assert args[:3] == ["ramba-eval", "lm-eval", "run"]
    monkeypatch.chdir(ROOT)   # the README runs from the repository root
    argv = complete_args(args[2:] + ["--limit", "1", "--output_path", str(tmp_path / "o")])
    assert any(a.startswith("model=ramba:checkpoints/ramba-tiny,tokenizer=") for a in argv)
    _lm_eval_cli(["lm-eval", *argv], monkeypatch)
    res = json.loads(next((tmp_path / "o").rglob("results_*.json")).read_text())["results"]
    assert res["niah_single_1"]["4096,none"] == 1.0


def test_readme_way_3_lm_eval_with_our_tasks(tmp_path, monkeypatch):
    import json
    from ramba.evals import defaults
    from ramba.evals.lm_eval_plugin import lm_eval_task_dir
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(tmp_path / "cache"))
    args = _ways()[2]
    assert args[:2] == ["lm_eval", "run"] and args[args.index("--include_path") + 1] == "$(ramba-eval tasks --lm-eval-path)"
    args = _opt(args, "--include_path", lm_eval_task_dir())
    args = _opt(args, "--model_args", f"pretrained={defaults.ensure_tiny_hf_model()},dtype=float32")
    args = _opt(args, "--metadata", '{"max_seq_lengths": [1024], "depths": 1, "num_samples": 1}')
    _lm_eval_cli(args + ["--output_path", str(tmp_path / "o")], monkeypatch)
    res = json.loads(next((tmp_path / "o").rglob("results_*.json")).read_text())["results"]
    assert set(res) == {"ramba_passkey", "ramba_niah_single_1"} and "score,none" in res["ramba_passkey"]
