"""Samples -> backend -> score -> records. Resumable by (sample_id, convention); Ctrl-C leaves a valid folder.

`prepare()` does every check that can fail before anything is written: the preflight (task, model, tokenizer,
device, writable folders, free disk, positions; `preflight.py`), then, with the model loaded, the exact limits
of every sample (positions incl. the answer, vocabulary, prompt cache). `execute()` then streams samples through
the backend. Timing excludes warm-up: the first sample of a session (on GPU: of each length) is preceded by an
untimed prefill of its first segment, so compilation and autotuning land in `warmup_s`, not in `latency_s`.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ramba.errors import BadInputError, DoesNotFitError, RambaEvalError
from ramba.evals import checks, env, fault, lock, merge
from ramba.evals.backends import feed_prompt, load_backend
from ramba.evals.config import RunConfig
from ramba.evals.devices import resolve_device
from ramba.evals.identity import resolve_path, weights_fingerprint
from ramba.evals.preflight import check_out_dir, preflight  # noqa: F401  (check_out_dir: re-exported)
from ramba.evals.records import (CONVENTIONS, RECORDS_FILE, SCHEMA_VERSION, SampleRecord, append_records,
                                 read_meta, write_meta)
from ramba.evals.scoring import decode_safely, one_pass, task_budget


DEFAULT_SEGMENT = 4096


class RunInterrupted(RambaEvalError):
    """Ctrl-C during a run: the folder is valid and a rerun of the same command resumes it."""


GENERATED_BUDGET = {"answer": "len(answer) tokens", "task": "the task's max_new_tokens (at least len(answer))"}


@dataclass
class Prepared:
    cfg: RunConfig
    out_dir: Path
    task: object
    backend: object
    device: str
    segment: int   # prompt tokens per consume(): the config's, else the backend's own `segment`, else 4096
    model_fingerprint: str | None = None   # sha of the checkpoint's files (identity.weights_fingerprint)
    fault: str | None = None               # RAMBA_EVAL_FAULT in effect (fault.py), None normally


def resolve_model_id(model: str | None) -> str | None:
    """Relative checkpoint paths resolve against the checkout (where canonical IDs point), then the current folder."""
    return resolve_path(model) if model else model


def prepare(cfg: RunConfig, backend=None, device: str | None = None) -> Prepared:
    """backend: reuse one already loaded for the same model (a suite's tasks share it); device: the resolved
    device to use instead of cfg.device's (a torchrun rank's cuda:LOCAL_RANK)."""
    from ramba.tasks import get_task
    from ramba.evals import defaults

    pf = preflight(cfg)
    task = get_task(cfg.task)
    tokenizer = None
    if cfg.tokenizer:
        from ramba.tasks.tokenizers import load_tokenizer
        tokenizer = load_tokenizer(resolve_path(cfg.tokenizer))
    model_id = pf.model_id
    if pf.backend == "hf" and model_id and Path(model_id) == defaults.tiny_hf_dir():
        defaults.ensure_tiny_hf_model()  # the embedded default: built once, then cached
    device = device or resolve_device(cfg.device)
    spec = fault.active()
    fingerprint = weights_fingerprint(model_id) if model_id else None
    _check_resume(pf.out_dir, fingerprint, spec)  # before loading: a refusal should not cost a model load
    if backend is None:
        backend = fault.wrap(load_backend(pf.backend, model_id, device=device, tokenizer=tokenizer,
                                          trust_remote_code=cfg.trust_remote_code, seed=cfg.seed,
                                          **cfg.backend_options()), spec)
    if callable(getattr(backend, "check_fits", None)):   # memory budget: fail before anything is written
        import sys
        print(backend.check_fits(max(cfg.lengths)), file=sys.stderr)
    _check_samples(cfg, task, backend, pf)
    segment = cfg.segment or int(getattr(backend, "segment", None) or DEFAULT_SEGMENT)
    return Prepared(cfg, pf.out_dir, task, backend, device, segment, fingerprint, spec)


def _check_resume(out: Path, fingerprint: str | None, spec: str | None) -> None:
    """A folder is resumed only with the same weights and the same fault setting: the run id names the config,
    and a checkpoint replaced under the same path must not add its rows to the old model's."""
    meta = read_meta(out) if out.is_dir() else None
    if meta is None:
        return
    old = meta.get("model_fingerprint")
    if old and fingerprint and old != fingerprint:
        raise BadInputError(f"output folder {str(out)!r} holds results of other weights under the same model path "
                            f"(fingerprint {old} != {fingerprint}); pick another --out or delete that folder")
    if meta.get("fault") != spec:
        raise BadInputError(f"output folder {str(out)!r} was run with {fault.ENV_VAR}={meta.get('fault')!r}, now "
                            f"{spec!r}; pick another --out")


def _check_samples(cfg: RunConfig, task, backend, pf) -> None:
    """Exact limits over every sample: answers within the tokenizer, prompt + answer within the positions,
    and room for the prompts the cache will write. The task raises DoesNotFitError for a template too long."""
    tok = backend.tokenizer
    need, longest, top, cache_bytes, count = 0, 0, -1, 0, 0
    for s in task.generate(list(cfg.lengths), list(cfg.depths), cfg.samples, cfg.seed, tok):
        count += 1
        if s.length + len(s.answer_ids) - 1 > need:
            need, longest = s.length + len(s.answer_ids) - 1, s.length
        top = max(top, max(s.answer_ids))
        exists = getattr(s.source, "exists", None)
        if exists is not None and not exists():
            cache_bytes += 4 * s.length
    if count == 0:
        raise BadInputError(f"task {cfg.task!r} produced no samples for lengths {list(cfg.lengths)}")
    if top >= tok.vocab_size:
        raise BadInputError("task ids exceed the tokenizer's vocabulary; pass the model's own --tokenizer")
    positions = getattr(backend, "max_positions", None) or pf.positions
    checks.check_positions(cfg.model, positions, need, longest)
    from ramba.tasks.cache import cache_root
    checks.check_free_disk([(Path(cache_root()), cache_bytes, "prompt cache")])


def _meta(p: Prepared, status: str, previous: dict | None, **extra) -> dict:
    """extra: error (a failed run's one-line reason), warmup_s (this session's untimed warm-up seconds)."""
    from ramba.evals.defaults import REPO_ROOT
    be = p.backend
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    warm = dict((previous or {}).get("warmup_s_by_session") or {})
    sessions = (previous or {}).get("sessions", 0) + (1 if status == "running" else 0)
    if "warmup_s" in extra:
        warm[str(sessions)] = round(float(extra.pop("warmup_s")), 4)
    meta = {
        "run_id": p.cfg.run_id, "config": _located_nowhere(p.cfg), "config_hash": p.cfg.config_hash(),
        "status": status, "started_at": (previous or {}).get("started_at", now), "updated_at": now,
        "sessions": sessions,
        "git_sha": env.git_sha(REPO_ROOT), "packages": env.package_versions(), "env": env.device_info(p.device),
        "backend": {"name": be.name, "model_id": be.model_id, "tokenizer": be.tokenizer.name,
                    "tokenizer_fingerprint": be.tokenizer.fingerprint(),
                    **(be.meta() if callable(getattr(be, "meta", None)) else {})},
        "model_config": _model_config(be),
        "model_fingerprint": p.model_fingerprint,
        "fault": p.fault,
        "segment": p.segment,
        "warmup_s_by_session": warm,
        "conventions": list(CONVENTIONS),
        "scoring": "one prefill per sample; teacher-forced = argmax matches the answer at every position; "
                   f"generated = greedy decode of {GENERATED_BUDGET[p.cfg.gen_tokens]} scored by the task; "
                   "a prediction holding an id outside the tokenizer's vocabulary is wrong",
        "gen_tokens": p.cfg.gen_tokens,
        **extra,
    }
    return meta


def _located_nowhere(cfg: RunConfig) -> dict:
    """The config without `out`: where a folder lives is not part of the run (folders move: baselines, CI)."""
    d = cfg.to_dict()
    d.pop("out")
    return d


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


def warm_up(p: Prepared, sample) -> float:
    """One untimed prefill of the sample's first segment and one decode step, so that compilation (Triton,
    torch.compile, cuDNN autotuning) and first-touch allocations are not timed as the sample's latency."""
    be = p.backend
    t0 = time.perf_counter()
    be.reset()
    logits = be.consume(next(sample.prompt_chunks(p.segment)))
    be.step(int(logits.argmax()))
    env.sync(p.device)
    return time.perf_counter() - t0


def evaluate_sample(p: Prepared, sample, todo: tuple[str, ...], warmup_s: float = 0.0) -> list[SampleRecord]:
    be = p.backend
    env.reset_peak_host()
    env.reset_peak_gpu(p.device)
    tb = time.perf_counter()
    chunks = sample.prompt_chunks(p.segment)
    first = next(chunks)  # the task builds the prompt (or its cache file) here, before the clock starts
    t0 = time.perf_counter()
    be.reset(prompt_length=sample.length)   # RAMba anchors its reset grid to the prompt end
    fed = 0

    def counted():
        nonlocal fed
        for chunk in itertools.chain([first], chunks):
            fed += len(chunk)
            yield chunk
    # every chunk but the last through consume_more where the backend has it (RAMba: no retrieval until the end)
    logits = feed_prompt(be, counted())
    env.sync(p.device)  # GPU work is asynchronous: stop the prefill clock when it is done, not when it is queued
    t_prefill = time.perf_counter() - t0
    state_bytes = int(be.state_bytes())
    extra = task_budget(sample) - len(sample.answer_ids) if p.cfg.gen_tokens == "task" else 0
    op = one_pass(be, logits, sample.answer_ids, extra=extra)
    latency = time.perf_counter() - t0
    common = dict(
        schema_version=SCHEMA_VERSION, sample_id=sample.sample_id, task=sample.task, length=sample.length,
        achieved_length=fed, depth=sample.depth, seed=sample.seed, index=sample.index, backend=be.name,
        model=be.model_id, answer=sample.answer_text, answer_ids=list(sample.answer_ids),
        needle_token_pos=int(sample.needle_token_pos), prompt_s=t0 - tb,
        latency_s=latency, prefill_s=t_prefill,
        prefill_tok_s=fed / max(t_prefill, 1e-9), peak_gpu_bytes=env.peak_gpu_bytes(p.device),
        peak_host_bytes=env.peak_host_bytes(), state_bytes=state_bytes, warmup_s=warmup_s)
    out = []
    for conv in todo:
        if conv == "generated":
            ids = list(op.generated)
            text, oov = decode_safely(be.tokenizer, ids)
            # An id the tokenizer cannot decode is no text at all: the model's answer is wrong, not the run.
            correct, score = (False, 0.0) if oov else _score(p.task, sample, text, conv)
        else:
            # Argmaxes after the first mismatch are not computed (greedy decoding took over): -1 never matches.
            ids = list(op.teacher_forced) + [-1] * (len(sample.answer_ids) - len(op.teacher_forced))
            text, _ = decode_safely(be.tokenizer, op.teacher_forced)
            correct, score = _score(p.task, sample, ids, conv)
        out.append(SampleRecord(convention=conv, correct=correct, score=score, prediction=text,
                                prediction_ids=ids, **common))
    return out


def execute(p: Prepared, progress: bool = True, console=None) -> Path:
    out = p.out_dir
    out.mkdir(parents=True, exist_ok=True)
    try:
        with lock.hold(out):  # one writer per folder; the lock file is removed when the run ends
            _execute_locked(p, progress, console)
    finally:
        if callable(getattr(p.backend, "close", None)):   # frees the chunk memory (and its disk folder)
            p.backend.close()
        mem_dir = out / "memory"
        if mem_dir.is_dir() and not any(mem_dir.iterdir()):
            mem_dir.rmdir()
    return out


def _needs_warmup(p: Prepared, length: int, warmed: set[int]) -> bool:
    """GPU kernels compile and autotune per shape: warm up before each new length. CPU: once per session."""
    return length not in warmed if p.device.startswith("cuda") else not warmed


@dataclass
class Session:
    """What this process has done in the current session: kept apart so the meta written on an interrupt or a
    failure still has the warm-up seconds and the sample that was running."""
    rank: int = 0
    warm_total: float = 0.0
    written: int = 0                     # samples whose records this session appended
    sample: object = None                # the sample being evaluated (or the last one)
    warmed: set = field(default_factory=set)


def run_samples(p: Prepared, samples, done: dict[str, set], records_path: Path, session: Session,
                bar=None, job=None) -> None:
    """Evaluate `samples` in order, skipping conventions in `done`, appending each sample's records to
    `records_path` as soon as it is finished (a killed process loses only the sample it was running)."""
    bar = _NoProgress() if bar is None else bar
    for sample in samples:
        session.sample = sample
        todo = tuple(c for c in CONVENTIONS if c not in done.get(sample.sample_id, ()))
        if todo:
            bar.update(job, description=f"{p.cfg.task} L={sample.length} d={sample.depth:.2f}")
            warm = 0.0
            if _needs_warmup(p, sample.length, session.warmed):
                warm = warm_up(p, sample)
                session.warmed.add(sample.length)
                session.warm_total += warm
            append_records(records_path, evaluate_sample(p, sample, todo, warmup_s=warm))
            session.written += 1
            fault.maybe_kill(session.rank, session.written)
        bar.advance(job)


def plan_order(p: Prepared) -> list[str]:
    """The sample ids in the task's order: the order of records.jsonl."""
    cfg = p.cfg
    return [s.sample_id for s in p.task.generate(list(cfg.lengths), list(cfg.depths), cfg.samples, cfg.seed,
                                                 p.backend.tokenizer)]


def _execute_locked(p: Prepared, progress: bool, console) -> None:
    import torch
    cfg, out = p.cfg, p.out_dir
    records_path = out / RECORDS_FILE
    # Every record file counts, rank files of an earlier torchrun session too; repair: drop torn last lines.
    done = merge.done_conventions(out, repair=True)
    write_meta(out, _meta(p, "running", read_meta(out)))
    _write_config_copy(cfg, out)
    total = len(cfg.lengths) * len(cfg.depths) * cfg.samples
    bar = _progress(progress, console)
    session = Session()
    try:
        with bar, torch.inference_mode():  # evaluation only: no autograd graph kept alive by any backend
            job = bar.add_task(f"{cfg.task} · {cfg.model}", total=total)
            run_samples(p, p.task.generate(list(cfg.lengths), list(cfg.depths), cfg.samples, cfg.seed,
                                           p.backend.tokenizer), done, records_path, session, bar, job)
    except KeyboardInterrupt:
        write_meta(out, _meta(p, "interrupted", read_meta(out), warmup_s=session.warm_total))
        raise RunInterrupted(f"interrupted; finished samples are saved in {out} and rerunning the same "
                             "command resumes the run") from None
    except Exception as e:
        err = _as_user_error(e, p, session.sample)
        write_meta(out, _meta(p, "failed", read_meta(out), warmup_s=session.warm_total,
                              error=" ".join(str(err or e).split())[:500] or type(e).__name__))
        if err is not None:
            raise err from None
        raise
    if merge.rank_files(out):  # a folder a torchrun session began: fold its rank files into records.jsonl
        merge.merge_folder(out, plan_order(p), remove_rank_files=True)
    write_meta(out, _meta(p, "complete", read_meta(out), warmup_s=session.warm_total))


def _as_user_error(e: BaseException, p: Prepared, sample) -> RambaEvalError | None:
    """Failures a user can act on, as one line; None for anything else (a bug: keep its traceback)."""
    import torch
    where = f" at length {sample.length:,} (sample {sample.sample_id})" if sample is not None else ""
    if isinstance(e, torch.OutOfMemoryError):
        return DoesNotFitError(f"out of memory on {p.device}{where}; finished samples are saved in {p.out_dir}: "
                               "rerun with a shorter --length or a smaller --segment")
    if isinstance(e, OSError) and e.errno is not None:
        return RambaEvalError(f"cannot write {e.filename or p.out_dir}{where}: {e.strerror}; finished samples are "
                              "saved: free the disk or fix the folder, then rerun to resume")
    if isinstance(e, RambaEvalError):
        return e
    return None


def _write_config_copy(cfg: RunConfig, out: Path) -> None:
    """config.yaml next to the records: `ramba-eval run results/X/config.yaml` reproduces (and resumes) it.
    It has no `out`: it resumes the folder it sits in, wherever that is (no machine-specific path)."""
    import yaml
    from ramba.atomic import atomic_write_text
    d = _located_nowhere(cfg)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(d, sort_keys=False))


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
    """Under torchrun (WORLD_SIZE set) every rank runs its shard and rank 0 merges (distributed.py)."""
    from ramba.evals import distributed
    ranks = distributed.from_env()
    if ranks is not None:
        return distributed.run(cfg, ranks, progress=progress, console=console)
    return execute(prepare(cfg), progress=progress, console=console)
