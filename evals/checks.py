"""Limits checked before a run writes anything: writable folders, free disk, the model's positions.

Each check raises a RambaEvalError whose one line names the limit and the fix, so a run that cannot finish
fails before it creates its results folder (and not with an OSError or an IndexError half-way through).
Pure Python: the dry run calls these too.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ramba.errors import BadInputError, DoesNotFitError

# config.json keys that bound the positions of learned or fixed position tables, in the order HF models use them.
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


def nearest_existing(path: Path) -> Path:
    """The path itself, or its closest ancestor that exists (where mkdir would start)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path: Path, what: str, fix: str) -> None:
    """`path` is (or can be created as) a writable folder. access(2) also reports read-only mounts, for root too."""
    p = Path(path)
    base = nearest_existing(p)
    if not base.is_dir():
        raise BadInputError(f"{what} {str(p)!r} cannot be created: {str(base)!r} is a file; {fix}")
    why = None
    if not os.access(base, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if _read_only_mount(base) else "is not writable"
    else:
        # access(2) trusts permission bits, which root bypasses; /proc-like folders refuse anyway. A probe
        # folder, removed at once, is the only sure answer.
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".ramba-eval-probe-", dir=base))
        except OSError as e:
            why = f"refuses new files ({e.strerror})"
    if why:
        raise BadInputError(f"{what} {str(p)!r} cannot be written: {str(base)!r} {why}; {fix}")


def _read_only_mount(p: Path) -> bool:
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_free_disk(needs: list[tuple[Path, int, str]]) -> None:
    """needs: (folder, bytes, what). Needs on the same file system add up; each file system must have room."""
    by_dev: dict[int, list[tuple[Path, int, str]]] = {}
    for folder, nbytes, what in needs:
        base = nearest_existing(folder)
        by_dev.setdefault(os.stat(base).st_dev, []).append((base, nbytes, what))
    for items in by_dev.values():
        total = sum(n for _, n, _ in items)
        free = shutil.disk_usage(items[0][0]).free
        if total > free:
            parts = " + ".join(f"{what} {_mib(n)}" for _, n, what in items if n)
            raise DoesNotFitError(f"not enough free disk on {str(items[0][0])!r}: the run needs up to {_mib(total)} "
                                  f"({parts}) and {_mib(free)} are free; free some space, pick another --out, "
                                  "or set RAMBA_EVAL_CACHE to a larger disk")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def model_positions(backend: str, model_dir: str | None) -> int | None:
    """How many positions a local hf model can address (its config.json), None when unbounded or unknown.
    RAMba has no position table (RoPE inside HSA chunks only), so it is unbounded."""
    if backend != "hf" or not model_dir:
        return None
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for key in _POSITION_KEYS:
        v = cfg.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def check_positions(model: str, positions: int | None, need: int, longest: int) -> None:
    """need: positions the longest sample uses, `longest` prompt tokens plus the answer tokens fed back after it
    (need == longest when only the prompt is known, as in the dry run)."""
    if positions is None or need <= positions:
        return
    extra = need - longest
    what = (f"the longest prompt has {longest:,} tokens" if extra == 0 else
            f"the longest sample needs {need:,} (a {longest:,}-token prompt and {extra} answer token(s) fed back)")
    raise DoesNotFitError(
        f"model {model!r} has {positions:,} positions but {what}; pass lengths of at most {positions - extra:,}, "
        "or, for a RoPE model meant to run past its training length, raise max_position_embeddings in its config.json")
