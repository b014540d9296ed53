"""Runs under torchrun: every rank evaluates its shard of the samples, rank 0 merges one results folder.

`torchrun --nproc-per-node N -m ramba.evals.cli run CONFIG` (or `ramba-eval run CONFIG --launcher torchrun
--nproc N`) starts N processes with RANK / WORLD_SIZE / LOCAL_RANK set; `runner.run` sees them and calls `run`:

1. each rank takes its device (`cuda:LOCAL_RANK` on GPUs) and joins the process group (NCCL on GPUs, gloo on
   CPU; the small control messages below always go through a gloo group, which also notices a dead peer);
2. every rank prepares (checks, model load); an error on any rank stops all of them with that rank's line;
3. rank 0 takes the folder's lock, reads ALL its record files (any earlier rank count, or a single-process
   run), plans what is left (sharding.py: longest first, balanced by tokens), writes `plan.json` and meta, and
   broadcasts the plan; each rank checks that it sees `plan.json` (multi-node runs need a shared folder);
4. each rank runs its shard, appending to `records.rank<R>.jsonl` per finished sample;
5. the ranks report to rank 0 (gather), which merges the files into `records.jsonl` (merge.py) and writes the
   final meta: `missing` lists the samples without records, `distributed` what each rank did.

A rank that dies loses only the sample it was running: its records are on disk. Rank 0 notices at the gather
(gloo reports the closed connection) or is stopped by torchrun with SIGTERM, which reads as Ctrl-C here; either
way it merges what exists and writes meta `interrupted` with the missing samples, and a rerun (with any number
of ranks) resumes. `RAMBA_EVAL_DIST_TIMEOUT` (seconds, default 7200) bounds each wait for a live but stuck rank.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ramba.errors import BadInputError, RambaEvalError
from ramba.evals import lock, merge
from ramba.evals.records import CONVENTIONS, read_meta, write_meta
from ramba.evals.sharding import ShardPlan, Work, plan_shards

PLAN_FILE = "plan.json"
TIMEOUT_VAR = "RAMBA_EVAL_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 7200


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env(environ=None) -> Ranks | None:
    """The rank torchrun gave this process (RANK, WORLD_SIZE, LOCAL_RANK), or None outside torchrun."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ or "RANK" not in environ:
        return None
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local = int(environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise BadInputError(f"RANK={environ.get('RANK')!r} / WORLD_SIZE={environ.get('WORLD_SIZE')!r} / "
                            f"LOCAL_RANK={environ.get('LOCAL_RANK')!r} are not integers; start with torchrun") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise BadInputError(f"RANK={rank} does not fit WORLD_SIZE={world}; start with torchrun")
    return Ranks(rank, world, local)


def is_main() -> bool:
    """True outside torchrun and on rank 0: the process that prints results and writes reports."""
    r = from_env()
    return r is None or r.is_main


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_VAR, "").strip()
    if not raw:
        return float(DEFAULT_TIMEOUT_S)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise BadInputError(f"{TIMEOUT_VAR}={raw!r} must be a positive number of seconds")
    return value


def rank_device(device_spec: str, ranks: Ranks) -> str:
    """cfg.device for this rank: a GPU run gives rank r the GPU cuda:LOCAL_RANK of its node."""
    from ramba.evals.devices import resolve_device
    resolved = resolve_device(device_spec)
    if not resolved.startswith("cuda"):
        return resolved
    import torch
    if ":" in device_spec and ranks.world_size > 1:
        raise BadInputError(f"device {device_spec!r} names one GPU, but under torchrun each rank uses "
                            "cuda:LOCAL_RANK; set device: cuda (or auto)")
    count = torch.cuda.device_count()
    if ranks.local_rank >= count:
        raise BadInputError(f"local rank {ranks.local_rank} has no GPU: this node has {count} CUDA device(s); "
                            f"start at most {count} processes per node (--nproc-per-node {count})")
    torch.cuda.set_device(ranks.local_rank)
    return f"cuda:{ranks.local_rank}"


class Group:
    """The process group and the few object collectives the run needs (all on a gloo group: CPU objects, and
    gloo raises at once when a peer's connection closes instead of waiting for the timeout)."""

    def __init__(self, ranks: Ranks, device: str):
        import torch.distributed as dist
        self.ranks, self._dist = ranks, dist
        self.backend = "nccl" if device.startswith("cuda") else "gloo"
        timeout = timedelta(seconds=timeout_s())
        if not dist.is_available():
            raise RambaEvalError("this torch has no torch.distributed; install a torch built with it")
        if not dist.is_initialized():
            dist.init_process_group(self.backend, timeout=timeout)
        self.backend = dist.get_backend()
        self.cpu = None if self.backend == "gloo" else dist.new_group(backend="gloo", timeout=timeout)

    def broadcast(self, obj):
        box = [obj]
        self._dist.broadcast_object_list(box, src=0, group=self.cpu)
        return box[0]

    def all_gather(self, obj) -> list:
        out = [None] * self.ranks.world_size
        self._dist.all_gather_object(out, obj, group=self.cpu)
        return out

    def gather(self, obj) -> list | None:
        out = [None] * self.ranks.world_size if self.ranks.is_main else None
        self._dist.gather_object(obj, out, dst=0, group=self.cpu)
        return out

    def agreed(self, fn):
        """fn() on every rank; when any rank raises, every rank raises (its own error, else the first failing
        rank's one line), so that no rank waits in a later collective for one that gave up."""
        try:
            value, err = fn(), None
        except Exception as e:  # noqa: BLE001  (every rank must reach the all_gather below)
            value, err = None, e
        said = self.all_gather(None if err is None else " ".join(str(err).split()) or type(err).__name__)
        if err is not None:
            raise err
        for r, msg in enumerate(said):
            if msg is not None:
                raise RambaEvalError(f"rank {r}: {msg}")
        return value


_GROUP: Group | None = None


def close_group() -> None:
    global _GROUP
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()
    _GROUP = None


def process_group(ranks: Ranks, device: str) -> Group:
    """One group per process (a suite's runs share it), destroyed at exit: left to the C++ destructors, gloo's
    threads abort the process ("terminate called without an active exception") after a successful run."""
    global _GROUP
    if _GROUP is None:
        _GROUP = Group(ranks, device)
        atexit.register(close_group)
    return _GROUP


class StopSignals:
    """SIGTERM (torchrun stopping the group because a rank died) reads as Ctrl-C while the shard runs, so the
    folder stays valid. After the shard, `hold()` turns both into a note: rank 0's gather and merge then finish
    (milliseconds; torchrun waits 30 s before SIGKILL) instead of being cut half-way."""

    def __init__(self):
        self.raising, self.received = True, None

    def __call__(self, signum, frame):
        self.received = signum
        if self.raising:
            raise KeyboardInterrupt

    def hold(self) -> None:
        self.raising = False
        signal.signal(signal.SIGINT, self)

    def __enter__(self):
        self._old = {s: signal.signal(s, self) for s in (signal.SIGTERM,)}
        self._old[signal.SIGINT] = signal.getsignal(signal.SIGINT)
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        return False


def run(cfg, ranks: Ranks, progress: bool = True, console=None) -> Path:
    from ramba.evals.runner import RunInterrupted
    with StopSignals() as stop:
        try:
            return _run(cfg, ranks, progress and ranks.is_main, console, stop)
        except KeyboardInterrupt:  # before or after the shard (model load, a collective): nothing to merge
            raise RunInterrupted("interrupted; rerunning the same command resumes the run") from None


def _run(cfg, ranks: Ranks, progress: bool, console, stop: StopSignals) -> Path:
    from ramba.evals import runner
    device = rank_device(cfg.device, ranks)   # same config on every rank: a bad device fails on all alike
    group = process_group(ranks, device)
    p = group.agreed(lambda: runner.prepare(cfg, device=device))
    out = p.out_dir
    samples = list(p.task.generate(list(cfg.lengths), list(cfg.depths), cfg.samples, cfg.seed,
                                   p.backend.tokenizer))
    order = [s.sample_id for s in samples]
    with ExitStack() as stack:
        lead = (lambda: _lead(p, ranks, group, samples, stack)) if ranks.is_main else (lambda: None)
        shared = group.broadcast(group.agreed(lead))
        plan, done = ShardPlan.from_dict(shared["plan"]), {k: set(v) for k, v in shared["done"].items()}
        group.agreed(lambda: _check_shared_folder(out, shared["token"]))
        by_id = {s.sample_id: s for s in samples}
        mine = [by_id[sid] for sid in plan.shards[ranks.rank]]
        outcome = _run_shard(p, ranks, group, mine, done, plan, progress, console, order, stop)
        stop.hold()   # from here on a signal waits: the gather blocks in C++ anyway, and the merge must end whole
        try:
            outcomes = group.gather(outcome)
        except RuntimeError as e:  # a peer died (gloo: connection closed) or the wait timed out
            close_group()   # broken: tear it down now, not in an exit handler
            if not ranks.is_main:
                raise runner.RunInterrupted(f"rank 0 stopped before the end ({' '.join(str(e).split())[:200]}); "
                                            f"finished samples are saved in {out}: rerun to resume") from None
            outcomes = None
        if ranks.is_main:
            _finish(p, ranks, group, plan, order, outcomes)   # raises unless the run is complete
        if outcome["status"] == "failed":
            raise RambaEvalError(f"rank {ranks.rank}: {outcome['error']}")
    return out


def _lead(p, ranks: Ranks, group: Group, samples: list, stack: ExitStack) -> dict:
    """Rank 0: take the folder, read what every earlier session wrote, plan what is left, write it down."""
    from ramba.atomic import atomic_write_text
    from ramba.evals import runner
    out = p.out_dir
    out.mkdir(parents=True, exist_ok=True)
    stack.enter_context(lock.hold(out))   # one writer per folder: the run, through its rank 0
    done = merge.done_conventions(out, repair=True)   # no rank writes yet: torn lines can be cut
    left = [s for s in samples if any(c not in done.get(s.sample_id, ()) for c in CONVENTIONS)]
    plan = plan_shards([Work(s.sample_id, s.length + len(s.answer_ids)) for s in left], ranks.world_size)
    token = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
    atomic_write_text(out / PLAN_FILE, json.dumps({"token": token, "backend": group.backend,
                                                    "imbalance": round(plan.imbalance(), 4), **plan.to_dict()},
                                                   indent=1) + "\n")
    previous = read_meta(out)
    write_meta(out, runner._meta(p, "running", previous, distributed=_dist_meta(ranks, group, plan, None)))
    runner._write_config_copy(p.cfg, out)
    return {"plan": plan.to_dict(), "token": token,
            "done": {sid: sorted(c) for sid, c in done.items() if sid in {s.sample_id for s in left}}}


def _check_shared_folder(out: Path, token: str) -> None:
    try:
        seen = json.loads((out / PLAN_FILE).read_text()).get("token")
    except (OSError, ValueError):
        seen = None
    if seen != token:
        raise BadInputError(f"this rank does not see rank 0's {PLAN_FILE} in {str(out)!r}: every node must "
                            "write to one shared folder; pass --out on a shared file system")


def _run_shard(p, ranks: Ranks, group: Group, mine: list, done: dict, plan: ShardPlan, progress: bool,
               console, order: list[str], stop: StopSignals) -> dict:
    """This rank's samples into records.rank<R>.jsonl; returns what happened, for rank 0's meta.
    Ctrl-C / SIGTERM: rank 0 merges what exists (meta interrupted); every rank stops with RunInterrupted."""
    import torch
    from ramba.evals import runner
    path = p.out_dir / merge.rank_records_file(ranks.rank)
    session = runner.Session(rank=ranks.rank)
    bar = runner._progress(progress, console)
    t0 = time.perf_counter()
    status, error = "complete", None
    try:
        with bar, torch.inference_mode():
            job = bar.add_task(f"{p.cfg.task} · {p.cfg.model} · rank {ranks.rank}/{ranks.world_size}",
                               total=len(mine))
            runner.run_samples(p, mine, done, path, session, bar, job)
    except KeyboardInterrupt:
        stop.hold()
        lost = ""
        if ranks.is_main:
            own = _outcome(ranks, p, session, mine, t0, "interrupted", None)
            missing = _finish(p, ranks, group, plan, order, None, interrupted=True, own=own)
            lost = f": {len(missing)} sample(s) missing (listed in {p.out_dir / 'meta.json'})"
        raise runner.RunInterrupted(f"interrupted{lost}; finished samples are saved in {p.out_dir} and rerunning "
                                    "the same command resumes the run") from None
    except Exception as e:  # noqa: BLE001  (the other ranks' work goes on; rank 0 records this one's error)
        err = runner._as_user_error(e, p, session.sample)
        if err is None:
            import traceback
            traceback.print_exc()
        status, error = "failed", " ".join(str(err or e).split())[:500] or type(e).__name__
    return _outcome(ranks, p, session, mine, t0, status, error)


def _outcome(ranks: Ranks, p, session, mine: list, t0: float, status: str, error: str | None) -> dict:
    return {"rank": ranks.rank, "host": socket.gethostname(), "device": p.device, "status": status,
            "error": error, "planned": len(mine), "written": session.written,
            "tokens": sum(s.length + len(s.answer_ids) for s in mine),
            "warmup_s": round(session.warm_total, 4), "wall_s": round(time.perf_counter() - t0, 4)}


def _dist_meta(ranks: Ranks, group: Group, plan: ShardPlan, outcomes: list | None) -> dict:
    return {"launcher": "torchrun", "world_size": ranks.world_size, "backend": group.backend,
            "plan_tokens": list(plan.tokens), "plan_imbalance": round(plan.imbalance(), 4),
            "ranks": outcomes}


def _finish(p, ranks: Ranks, group: Group, plan: ShardPlan, order: list[str], outcomes: list | None,
            interrupted: bool = False, own: dict | None = None) -> tuple[str, ...]:
    """Rank 0: merge every record file into records.jsonl and write the final meta; raise unless complete
    (or interrupted: then it returns the missing sample ids, for the caller's message).
    outcomes None: some rank did not report (it died), or this rank was interrupted (`own` is its outcome)."""
    from ramba.evals import runner
    out = p.out_dir
    reported = outcomes if outcomes is not None else [own] if own else []
    failed = [o for o in reported if o["status"] == "failed"]
    missing = merge.missing_samples(order, merge.read_all(out))
    # A rank that died after its last record leaves nothing missing: the run is complete all the same.
    status = "failed" if failed else "interrupted" if missing or interrupted else "complete"
    # Complete: no rank has anything left to write, so the rank files can go once merged.
    result = merge.merge_folder(out, order, remove_rank_files=status == "complete")
    extra: dict = {"missing": list(result.missing)}
    if failed:
        extra["error"] = "; ".join(f"rank {o['rank']}: {o['error']}" for o in failed)[:500]
    elif outcomes is None and not interrupted:
        extra["note"] = "a rank stopped before reporting (killed or crashed)" + ("; rerun to resume"
                                                                                  if result.missing else "")
    write_meta(out, runner._meta(p, status, read_meta(out), warmup_s=sum(o["warmup_s"] for o in reported),
                                 distributed=_dist_meta(ranks, group, plan, reported or None), **extra))
    if status != "complete" and p.cfg.report:
        _report_anyway(out)
    if status == "failed":
        raise RambaEvalError(f"{extra['error']}; finished samples are saved in {out}: fix it and rerun to resume")
    if status == "interrupted" and not interrupted:
        raise runner.RunInterrupted(f"a rank stopped before the end: {len(result.missing)} sample(s) missing "
                                    f"(listed in {out / 'meta.json'}); rerunning the same command resumes")
    return result.missing


def _report_anyway(out: Path) -> None:
    """An incomplete run still gets its report (it lists the missing samples); a failure here is only noted."""
    try:
        from ramba.reports.render import write_report
        paths = write_report(out)
    except Exception as e:  # noqa: BLE001  (the run's own outcome is what the exit code says)
        print(f"report: not written ({' '.join(str(e).split())[:200]})", flush=True)
        return
    for key in ("html", "md"):
        print(f"report: {paths[key]}", flush=True)
