"""Samples -> backend -> score -> records. Resumable by (sample_id, convention); Ctrl-C leaves a valid folder.

`prepare()` does every check that can fail (task, model, tokenizer, template fit, output folder) before
anything is written; `execute()` then streams samples through the backend.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ramba.errors import BadInputError, RambaEvalError
from ramba.evals import env
from ramba.evals.backends import load_backend, parse_model_spec, resolve_device
from ramba.evals.config import RunConfig
from ramba.evals.records import (CONVENTIONS, RECORDS_FILE, SCHEMA_VERSION, SampleRecord, append_records,
                                 read_meta, read_records, write_meta)
from ramba.evals.scoring import one_pass


DEFAULT_SEGMENT = 4096


class RunInterrupted(RambaEvalError):
    """Ctrl-C during a run: the folder is valid and a rerun of the same command resumes it."""


@dataclass
class Prepared:
    cfg: RunConfig
    out_dir: Path
    task: object
    backend: object
    device: str
    segment: int   # prompt tokens per consume(): the config's, else the backend's own `segment`, else 4096


def check_out_dir(cfg: RunConfig) -> Path:
    """The folder must be new, empty, or hold a run of exactly this config (then we resume it)."""
    out = cfg.out_dir()
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output path {str(out)!r} is a file; pass a folder to --out")
    if out.is_dir() and any(f.name != ".lock" for f in out.iterdir()):
        meta = read_meta(out)
        if meta is None:
            raise BadInputError(f"output folder {str(out)!r} is not empty and holds no ramba-eval run; "
                                "pick another --out or empty it")
        if meta.get("config_hash") != cfg.config_hash():
            raise BadInputError(f"output folder {str(out)!r} holds a run with a different config "
                                f"({meta.get('config_hash')} != {cfg.config_hash()}); pick another --out, "
                                "delete that folder, or rerun with its config.yaml")
    return out


def resolve_model_id(model: str | None) -> str | None:
    """Relative checkpoint paths resolve against the current folder, then the repository root."""
    if not model:
        return model
    p = Path(model).expanduser()
    if p.is_absolute() or p.exists():
        return str(p.resolve()) if p.exists() else str(p)
    from ramba.evals.defaults import REPO_ROOT
    if (REPO_ROOT / p).exists():
        return str((REPO_ROOT / p).resolve())
    return model


def prepare(cfg: RunConfig, backend=None) -> Prepared:
    """backend: reuse one already loaded for the same model (a suite's tasks share it)."""
    from ramba.tasks import get_task
    from ramba.evals import defaults

    task = get_task(cfg.task)
    backend_name, model_id = parse_model_spec(cfg.model)
    out = check_out_dir(cfg)
    tokenizer = None
    if cfg.tokenizer:
        from ramba.tasks.tokenizers import load_tokenizer
        tokenizer = load_tokenizer(cfg.tokenizer)
    model_id = resolve_model_id(model_id)
    if backend_name == "hf" and model_id and Path(model_id) == defaults.tiny_hf_dir():
        defaults.ensure_tiny_hf_model()  # the embedded default: built once, then cached
    device = resolve_device(cfg.device)
    if backend is None:
        backend = load_backend(backend_name, model_id, device=device, tokenizer=tokenizer,
                               trust_remote_code=cfg.trust_remote_code, seed=cfg.seed)
    # Fail now, before writing, if the template cannot fit the smallest length (the task raises DoesNotFitError).
    first = next(iter(task.generate([min(cfg.lengths)], [cfg.depths[0]], 1, cfg.seed, backend.tokenizer)), None)
    if first is None:
        raise BadInputError(f"task {cfg.task!r} produced no samples for length {min(cfg.lengths)}")
    if max(first.answer_ids) >= backend.tokenizer.vocab_size:
        raise BadInputError(f"task ids exceed the tokenizer's vocabulary; pass the model's own --tokenizer")
    segment = cfg.segment or int(getattr(backend, "segment", None) or DEFAULT_SEGMENT)
    return Prepared(cfg, out, task, backend, device, segment)


def _meta(p: Prepared, status: str, previous: dict | None) -> dict:
    from ramba.evals.defaults import REPO_ROOT
    be = p.backend
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta = {
        "run_id": p.cfg.run_id, "config": p.cfg.to_dict(), "config_hash": p.cfg.config_hash(),
        "status": status, "started_at": (previous or {}).get("started_at", now), "updated_at": now,
        "sessions": (previous or {}).get("sessions", 0) + (1 if status == "running" else 0),
        "git_sha": env.git_sha(REPO_ROOT), "packages": env.package_versions(), "env": env.device_info(p.device),
        "backend": {"name": be.name, "model_id": be.model_id, "tokenizer": be.tokenizer.name,
                    "tokenizer_fingerprint": be.tokenizer.fingerprint(),
                    **(be.meta() if callable(getattr(be, "meta", None)) else {})},
        "model_config": _model_config(be),
        "segment": p.segment,
        "conventions": list(CONVENTIONS),
        "scoring": "one prefill per sample; teacher-forced = argmax matches the answer at every position; "
                   "generated = greedy decode of len(answer) tokens scored by the task",
    }
    return meta


def _model_config(be) -> dict | None:
    """The architecture as the backend loaded it (RambaConfig incl. mamba_segment, or an HF config)."""
    model = getattr(be, "model", None)
    for cfg in (getattr(model, "cfg", None), getattr(model, "config", None)):
        if cfg is not None and callable(getattr(cfg, "to_dict", None)):
            return cfg.to_dict()
    return None


def _score(task, sample, prediction, convention: str) -> tuple[bool, float]:
    """The task's own scorer (passkey: first digit run for generated, every position for teacher_forced)."""
    result = task.score(sample, prediction, convention)
    return bool(result["correct"]), float(result.get("score", float(result["correct"])))


def evaluate_sample(p: Prepared, sample, todo: tuple[str, ...]) -> list[SampleRecord]:
    be = p.backend
    env.reset_peak_host()
    env.reset_peak_gpu(p.device)
    tb = time.perf_counter()
    chunks = sample.prompt_chunks(p.segment)
    first = next(chunks)  # the task builds the prompt (or its cache file) here, before the clock starts
    t0 = time.perf_counter()
    be.reset()
    logits = be.consume(first)
    fed = len(first)
    for chunk in chunks:
        logits = be.consume(chunk)
        fed += len(chunk)
    t_prefill = time.perf_counter() - t0
    state_bytes = int(be.state_bytes())
    op = one_pass(be, logits, sample.answer_ids)
    latency = time.perf_counter() - t0
    common = dict(
        schema_version=SCHEMA_VERSION, sample_id=sample.sample_id, task=sample.task, length=sample.length,
        achieved_length=fed, depth=sample.depth, seed=sample.seed, index=sample.index, backend=be.name,
        model=be.model_id, answer=sample.answer_text, answer_ids=list(sample.answer_ids),
        needle_token_pos=int(sample.needle_token_pos), prompt_s=t0 - tb,
        latency_s=latency, prefill_s=t_prefill,
        prefill_tok_s=fed / max(t_prefill, 1e-9), peak_gpu_bytes=env.peak_gpu_bytes(p.device),
        peak_host_bytes=env.peak_host_bytes(), state_bytes=state_bytes)
    out = []
    for conv in todo:
        if conv == "generated":
            ids = list(op.generated)
            text = be.tokenizer.decode(ids)
            correct, score = _score(p.task, sample, text, conv)
        else:
            # Argmaxes after the first mismatch are not computed (greedy decoding took over): -1 never matches.
            ids = list(op.teacher_forced) + [-1] * (len(sample.answer_ids) - len(op.teacher_forced))
            text = be.tokenizer.decode(op.teacher_forced)
            correct, score = _score(p.task, sample, ids, conv)
        out.append(SampleRecord(convention=conv, correct=correct, score=score, prediction=text,
                                prediction_ids=ids, **common))
    return out


def execute(p: Prepared, progress: bool = True, console=None) -> Path:
    out = p.out_dir
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):  # one writer per folder; the lock goes with the file
        _execute_locked(p, progress, console)
    return out


def _execute_locked(p: Prepared, progress: bool, console) -> None:
    import torch
    cfg, out = p.cfg, p.out_dir
    records_path = out / RECORDS_FILE
    done: dict[str, set] = {}
    for row in read_records(records_path, repair=True):  # repair: drop a torn last line from a killed run
        done.setdefault(row["sample_id"], set()).add(row["convention"])
    write_meta(out, _meta(p, "running", read_meta(out)))
    _write_config_copy(cfg, out)
    total = len(cfg.lengths) * len(cfg.depths) * cfg.samples
    bar = _progress(progress, console)
    try:
        with bar, torch.inference_mode():  # evaluation only: no autograd graph kept alive by any backend
            job = bar.add_task(f"{cfg.task} · {cfg.model}", total=total)
            for sample in p.task.generate(list(cfg.lengths), list(cfg.depths), cfg.samples, cfg.seed,
                                          p.backend.tokenizer):
                todo = tuple(c for c in CONVENTIONS if c not in done.get(sample.sample_id, ()))
                if todo:
                    bar.update(job, description=f"{cfg.task} L={sample.length} d={sample.depth:.2f}")
                    append_records(records_path, evaluate_sample(p, sample, todo))
                bar.advance(job)
    except KeyboardInterrupt:
        write_meta(out, _meta(p, "interrupted", read_meta(out)))
        raise RunInterrupted(f"interrupted; finished samples are saved in {out} and rerunning the same "
                             "command resumes the run") from None
    write_meta(out, _meta(p, "complete", read_meta(out)))


def _lock(out: Path):
    """One writer per results folder: a second concurrent run would append duplicate rows."""
    import fcntl
    f = open(out / ".lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise BadInputError(f"another ramba-eval run is writing to {out}; wait for it or pick another --out") from None
    return f


def _write_config_copy(cfg: RunConfig, out: Path) -> None:
    """config.yaml next to the records: `ramba-eval run results/X/config.yaml` reproduces (and resumes) it."""
    import yaml
    from ramba.atomic import atomic_write_text
    atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass


def _progress(enabled: bool, console=None):
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def run(cfg: RunConfig, progress: bool = True, console=None) -> Path:
    return execute(prepare(cfg), progress=progress, console=console)
