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
