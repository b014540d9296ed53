"""Per-rank record files and their merge into the folder's one `records.jsonl`.

Under torchrun every rank appends to its own `records.rank<R>.jsonl` (appends of one writer per file stay
whole-line and torn-line safe, see records.py). What a folder has done is the union of ALL its record files,
whatever rank count wrote them, so a rerun with another number of ranks (or none) resumes correctly. The merge
dedupes by (sample_id, convention) (the first row wins: records.jsonl, then rank 0, 1, ...), orders rows as
the task's plan does (so a distributed run's file equals a single-process run's, timings aside), and replaces
`records.jsonl` atomically. Rank files are removed only once their rows are in the merged file and no rank
can still write (a complete run); until then they stay, and readers union them in.

Pure Python: reports read folders through `read_all` too.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ramba.atomic import atomic_write_bytes
from ramba.evals.records import CONVENTIONS, RECORDS_FILE, read_records

_RANK_RE = re.compile(r"^records\.rank(\d+)\.jsonl$")


def rank_records_file(rank: int) -> str:
    return f"records.rank{int(rank)}.jsonl"


def rank_files(out: Path) -> list[Path]:
    """The folder's per-rank record files, by rank number (rank 10 after rank 9)."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), f) for f in out.iterdir() if (m := _RANK_RE.match(f.name)) and f.is_file()]
    return [f for _, f in sorted(found)]


def record_files(out: Path) -> list[Path]:
    """records.jsonl first (merged, or a single-process run's), then the rank files."""
    main = Path(out) / RECORDS_FILE
    return ([main] if main.is_file() else []) + rank_files(out)


def _key(row: dict) -> tuple[str, str]:
    return row["sample_id"], row["convention"]


def read_all(out: Path, repair: bool = False) -> list[dict]:
    """Every finished row of the folder, deduped by (sample_id, convention), first file first. repair=True
    cuts torn last lines (only while no rank writes: at the start of a session, before the plan)."""
    rows, seen = [], set()
    for f in record_files(out):
        for row in read_records(f, repair=repair):
            if _key(row) not in seen:
                seen.add(_key(row))
                rows.append(row)
    return rows


def done_conventions(out: Path, repair: bool = False) -> dict[str, set[str]]:
    done: dict[str, set[str]] = {}
    for row in read_all(out, repair=repair):
        done.setdefault(row["sample_id"], set()).add(row["convention"])
    return done


def missing_samples(order: Sequence[str], rows: Sequence[dict]) -> list[str]:
    """Planned sample ids that lack a row for some convention, in plan order."""
    have: dict[str, set[str]] = {}
    for row in rows:
        have.setdefault(row["sample_id"], set()).add(row["convention"])
    return [sid for sid in order if not set(CONVENTIONS) <= have.get(sid, set())]


@dataclass(frozen=True)
class MergeResult:
    rows: int                   # rows in the merged records.jsonl
    missing: tuple[str, ...]    # planned sample ids without all their rows, in plan order
    removed: tuple[str, ...]    # rank files deleted (their rows are in records.jsonl)


def merge_folder(out: Path, order: Sequence[str], remove_rank_files: bool = False) -> MergeResult:
    """Write the union of the folder's record files as records.jsonl (atomically), in plan order: by the
    sample's place in `order`, then by convention; rows of samples outside the plan keep their order, last."""
    out = Path(out)
    rows = read_all(out)
    place = {sid: i for i, sid in enumerate(order)}
    conv = {c: i for i, c in enumerate(CONVENTIONS)}
    ranked = sorted(enumerate(rows), key=lambda ir: (place.get(ir[1]["sample_id"], len(place)),
                                                     conv.get(ir[1]["convention"], len(conv)), ir[0]))
    # Rows are re-serialised exactly as SampleRecord.to_json writes them, so a merged file reads like a written one.
    data = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for _, r in ranked)
    atomic_write_bytes(out / RECORDS_FILE, data.encode("utf-8"))
    removed = []
    if remove_rank_files:
        for f in rank_files(out):
            f.unlink()
            removed.append(f.name)
    return MergeResult(len(rows), tuple(missing_samples(order, rows)), tuple(removed))
