"""Typed run records: one JSONL row per (sample, convention) in records.jsonl, plus meta.json.

Appends are one os.write of whole lines on an O_APPEND descriptor, fsynced, so a killed run leaves at most one
torn last line; `read_records(repair=True)` cuts it off before a resumed run appends again.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ramba.atomic import atomic_write_text
from ramba.errors import BadInputError

SCHEMA_VERSION = 2           # 2: warmup_s; readers accept 1 (no warm-up recorded)
RECORDS_FILE = "records.jsonl"
META_FILE = "meta.json"
CONVENTIONS = ("generated", "teacher_forced")  # the spelling ramba.tasks.metrics uses


@dataclass(frozen=True)
class SampleRecord:
    schema_version: int
    sample_id: str
    task: str
    length: int                # requested prompt tokens
    achieved_length: int       # prompt tokens actually fed
    depth: float
    seed: int
    index: int
    backend: str
    model: str
    convention: str            # "generated" | "teacher_forced"
    correct: bool
    score: float               # the task's score in [0, 1]
    prediction: str            # decoded greedy output (generated) or the known teacher-forced argmaxes
    prediction_ids: list       # teacher_forced: argmax per answer position, -1 after the first mismatch (not computed)
    answer: str
    answer_ids: list
    needle_token_pos: int
    prompt_s: float            # building (or loading) the prompt, before the clock of the model starts
    latency_s: float           # model wall time of the sample: prefill + answer positions
    prefill_s: float
    prefill_tok_s: float
    peak_gpu_bytes: int        # 0 on CPU
    peak_host_bytes: int       # peak RSS of the process during this sample
    state_bytes: int           # backend state/cache after the prefill
    warmup_s: float = 0.0      # untimed warm-up (compile, first allocations) run just before this sample; 0 = none

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), ensure_ascii=False)


def append_records(path: Path, records: list[SampleRecord]) -> None:
    """Append the records of one sample in a single write: both conventions land together or not at all."""
    data = "".join(r.to_json() + "\n" for r in records).encode("utf-8")
    # Ctrl-C (and torchrun's SIGTERM) waits until the lines are complete (a pending signal is delivered when
    # the mask is lifted).
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def read_records(path: Path, repair: bool = False) -> list[dict]:
    """All complete rows. Bytes after the last newline are a torn write from a killed run: they are dropped,
    and with repair=True truncated from the file. A bad complete line means corruption and raises."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    cut = raw.rfind(b"\n") + 1  # end of the last complete line (0 when there is none)
    rows = []
    for i, line in enumerate(raw[:cut].split(b"\n")):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise BadInputError(f"{path} line {i + 1} is corrupt; delete that line (or the folder) and rerun") from None
    if repair and cut < len(raw):
        with open(path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
    return rows


def write_meta(out_dir: Path, meta: dict) -> None:
    meta = {"schema_version": SCHEMA_VERSION, **meta}
    atomic_write_text(Path(out_dir) / META_FILE, json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def read_meta(out_dir: Path) -> dict | None:
    p = Path(out_dir) / META_FILE
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        raise BadInputError(f"{p} is not valid JSON; delete the folder or pick another --out") from None
