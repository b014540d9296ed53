"""Samples, the Task protocol and the task registry.

A task is a pure generator: (lengths, depths, samples, seed, tokenizer) -> Samples. A Sample carries its answer and
metadata eagerly, but its prompt lazily: `prompt_chunks()` streams int32 ids, built on first use and, for long
prompts, cached on disk (see `ramba.tasks.cache`). Randomness comes only from `derive_seed(...)`: no global RNG.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ramba.errors import BadInputError

DEFAULT_CHUNK_TOKENS = 1 << 20


class PromptSource(Protocol):
    """Where a Sample's prompt ids come from (in memory, or a cached .npy built on demand)."""

    length: int

    def chunks(self, chunk_tokens: int) -> Iterator[np.ndarray]: ...
    def array(self) -> np.ndarray: ...


@dataclass(frozen=True)
class Sample:
    task: str
    length: int
    depth: float
    seed: int
    index: int
    sample_id: str                 # stable: f"{task}-L{length}-d{depth:.4f}-s{seed}-i{index}"
    answer_ids: tuple[int, ...]    # tokens the model must produce right after the prompt
    answer_text: str
    needle_token_pos: int          # token index where the (first) needle starts
    meta: dict = field(hash=False)  # task-specific (key text, filler kind, references, ...)
    source: PromptSource | None = field(default=None, repr=False, compare=False, hash=False)

    def prompt_chunks(self, chunk_tokens: int = DEFAULT_CHUNK_TOKENS) -> Iterator[np.ndarray]:
        """Stream the prompt as int32 arrays of at most `chunk_tokens` ids; their lengths sum to `length`."""
        if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, (int, np.integer)) or chunk_tokens < 1:
            raise BadInputError(f"chunk_tokens must be a positive integer, got {chunk_tokens!r}")
        if self.source is None:
            raise BadInputError(f"sample {self.sample_id} has no prompt source: build samples with a task's generate()")
        return self.source.chunks(int(chunk_tokens))

    def prompt_ids(self) -> np.ndarray:
        """The whole prompt as one int32 array (memory-mapped, read-only, for cached long prompts)."""
        if self.source is None:
            raise BadInputError(f"sample {self.sample_id} has no prompt source: build samples with a task's generate()")
        return self.source.array()

    @property
    def prompt_length(self) -> int:
        return self.source.length if self.source is not None else self.length

    def ensure_cached(self) -> str | None:
        """Build the on-disk prompt now (e.g. for a `generate` step ahead of a run); its path, or None for a
        short prompt that lives in memory."""
        ensure = getattr(self.source, "ensure", None)
        return ensure() if ensure is not None else None

    def to_dict(self) -> dict:
        """JSON-ready description (no prompt ids): for manifests and logs."""
        path = getattr(self.source, "path", None)
        return {"sample_id": self.sample_id, "task": self.task, "length": self.length, "depth": self.depth,
                "seed": self.seed, "index": self.index, "answer_ids": list(self.answer_ids),
                "answer_text": self.answer_text, "needle_token_pos": self.needle_token_pos, "meta": self.meta,
                "cache_path": path}


def make_sample_id(task: str, length: int, depth: float, seed: int, index: int) -> str:
    return f"{task}-L{length}-d{depth:.4f}-s{seed}-i{index}"


@runtime_checkable
class Task(Protocol):
    name: str
    description: str

    def generate(self, lengths: Sequence[int], depths: Sequence[float], samples: int, seed: int,
                 tokenizer) -> Iterator[Sample]: ...

    def score(self, sample: Sample, prediction: Any, convention: str = "generated") -> dict: ...


class GridTask:
    """Base for tasks that build one sample per (length, depth, index): subclasses define make_sample()."""

    name: str
    description: str

    def make_sample(self, length: int, depth: float, seed: int, index: int, tokenizer) -> Sample:
        raise NotImplementedError

    def generate(self, lengths: Sequence[int], depths: Sequence[float], samples: int, seed: int,
                 tokenizer) -> Iterator[Sample]:
        """Samples for every (length, depth, index), length outermost. Validates eagerly, builds lazily."""
        lengths, depths = check_lengths(lengths), check_depths(depths)
        samples, seed = check_count(samples), check_seed(seed)
        return (self.make_sample(n, d, seed, i, tokenizer) for n in lengths for d in depths for i in range(samples))


TASKS: dict[str, Task] = {}


def register_task(obj):
    """Register a Task instance, or a Task class (instantiated with no arguments); returns its argument."""
    task = obj() if isinstance(obj, type) else obj
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{obj!r} has no task name")
    if name in TASKS and type(TASKS[name]) is not type(task):
        raise ValueError(f"task {name!r} is already registered by {type(TASKS[name]).__name__}")
    TASKS[name] = task
    return obj


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(TASKS)) or "(none)"
        raise BadInputError(f"unknown task {name!r}: known tasks are {known}") from None


def list_tasks() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered task, sorted by name (for the CLI's `tasks` command)."""
    return [(n, TASKS[n].description) for n in sorted(TASKS)]


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any tuple of str/int/float parts: sha256 of their reprs (stable across runs/processes).

    Floats go through repr (shortest round-trip form), so 0.1 and 0.1000000001 give different seeds.
    """
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, (np.integer, np.floating)):
            p = p.item()
        if not isinstance(p, (str, int, float, bool, type(None))):
            raise TypeError(f"derive_seed takes str/int/float parts, got {type(p).__name__}")
        h.update(f"{type(p).__name__}:{p!r}".encode())
        h.update(b"\x1f")
    return int.from_bytes(h.digest()[:8], "little") >> 1


def rng_for(*parts: Any) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(derive_seed(*parts)))


# ---- validation shared by the tasks: one-line BadInputError messages ----

def check_lengths(lengths: Sequence[int]) -> list[int]:
    if isinstance(lengths, (int, np.integer)) and not isinstance(lengths, bool):
        lengths = [lengths]
    out = []
    for n in lengths:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise BadInputError(f"length {n!r} is not a positive integer token count (e.g. 4096 or 1048576)")
        if int(n) in out:
            raise BadInputError(f"length {int(n)} is given twice: list each length once")
        out.append(int(n))
    if not out:
        raise BadInputError("no lengths given: pass at least one token count")
    return out


def check_depths(depths: Sequence[float]) -> list[float]:
    if isinstance(depths, (int, float, np.integer, np.floating)) and not isinstance(depths, bool):
        depths = [depths]
    out = []
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(d)) or not 0.0 <= float(d) <= 1.0:
            raise BadInputError(f"depth {d!r} is outside [0, 1]: use a fraction of the haystack "
                                f"(0 = start, 1 = just before the question)")
        # sample ids carry the depth to 4 decimals: two depths that print alike would share ids (and resume state)
        twin = next((x for x in out if f"{x:.4f}" == f"{float(d):.4f}"), None)
        if twin is not None:
            raise BadInputError(f"depths {twin!r} and {float(d)!r} are the same to 4 decimals (sample ids use "
                                f"4): list each depth once, at least 0.0001 apart")
        out.append(float(d))
    if not out:
        raise BadInputError("no depths given: pass at least one depth in [0, 1]")
    return out


def check_count(samples: int) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise BadInputError(f"samples {samples!r} is not a positive integer")
    return int(samples)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BadInputError(f"seed {seed!r} is not a non-negative integer")
    return int(seed)
