"""The GitHub Actions workflow we ship for users: valid YAML, the README's install command, commands the CLI
has, files that exist, and reports plus plots uploaded whatever the outcome."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "benchmarks" / "ci" / "github-workflow.yml"


def test_workflow_is_ready_to_copy():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "push"} <= set(triggers)
    env = wf["env"]
    assert (ROOT / env["SUITE"]).is_file() and (ROOT / env["BASELINE"]).is_dir()
    steps = wf["jobs"]["eval"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert 'pip install -c constraints-cpu.txt -e ".[dev]"' in runs
    from ramba.evals.cli import app
    import typer.main
    commands = set(typer.main.get_command(app).commands)
    used = set(re.findall(r"ramba-eval ([a-z-]+)", runs))
    assert {"run", "report", "compare"} <= used <= commands
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "report.html" in upload["with"]["path"] and "plots" in upload["with"]["path"]
