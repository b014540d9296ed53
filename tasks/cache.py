"""Prompt sources: short prompts built in memory, long ones cached on disk as content-addressed .npy files.

Cache layout: $RAMBA_EVAL_CACHE (default ~/.cache/ramba-eval) / samples / <key[:2]> / <key>.npy, where key is the
sha256 of everything that determines the ids (task config, tokenizer fingerprint, seed, length, depth, index and
a generator version). A file is written block by block to a temp file in the same folder, fsynced, then renamed
into place, so a reader sees either no file or a complete one; peak memory is one block, whatever the length.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from typing import Callable, Iterator

import numpy as np

from ramba.errors import BadInputError, DoesNotFitError

Build = Callable[[Callable[[np.ndarray], None]], None]   # build(emit): emit int32 pieces in order

ENV_VAR = "RAMBA_EVAL_CACHE"
_DTYPE = np.dtype("<i4")


def cache_root() -> str:
    """Read at call time, so a test or a run can point the cache elsewhere via the environment."""
    return os.path.abspath(os.path.expanduser(os.environ.get(ENV_VAR) or "~/.cache/ramba-eval"))


def cache_key(parts: dict) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class InMemoryPrompt:
    """Rebuilt on each use (cheap for short prompts); nothing is kept alive between uses."""

    def __init__(self, build: Build, length: int):
        self.build, self.length = build, length

    def array(self) -> np.ndarray:
        out = np.empty(self.length, dtype=np.int32)
        at = 0

        def emit(piece):
            nonlocal at
            out[at:at + len(piece)] = piece
            at += len(piece)
        self.build(emit)
        if at != self.length:
            raise AssertionError(f"prompt builder produced {at} tokens, expected {self.length}")
        return out

    def chunks(self, chunk_tokens: int) -> Iterator[np.ndarray]:
        ids = self.array()
        for i in range(0, self.length, chunk_tokens):
            yield ids[i:i + chunk_tokens]


class CachedPrompt:
    """A memory-mapped .npy under the cache root, built on first use (and never rewritten while valid)."""

    def __init__(self, build: Build, length: int, key: str):
        self.build, self.length, self.key = build, length, key

    @property
    def path(self) -> str:
        return os.path.join(cache_root(), "samples", self.key[:2], f"{self.key}.npy")

    def exists(self) -> bool:
        return self._open_valid(self.path) is not None

    def ensure(self) -> str:
        """Path of a complete cache file, writing it first if it is missing or corrupt."""
        path = self.path
        if self._open_valid(path) is None:
            self._write(path)
        return path

    def array(self) -> np.ndarray:
        """Read-only memmap int32 [length]."""
        path = self.ensure()
        mm = self._open_valid(path)
        if mm is None:  # written a moment ago: only a concurrent corrupting writer could cause this
            raise BadInputError(f"cache file {path} is unreadable right after writing it: check the disk, "
                                f"or point {ENV_VAR} at another folder")
        return mm

    def chunks(self, chunk_tokens: int) -> Iterator[np.ndarray]:
        """Plain reads, not the map: each chunk is a fresh array, so resident memory stays at one chunk however
        long the prompt (pages of a map that was read through would all count in the reader's RSS)."""
        path = self.ensure()
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            # shape and dtype were validated by ensure(); reading the header leaves f at the first id
            (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
            for i in range(0, self.length, chunk_tokens):
                n = min(chunk_tokens, self.length - i)
                piece = np.fromfile(f, dtype=_DTYPE, count=n)
                if len(piece) != n:
                    raise BadInputError(f"cache file {path} was truncated while being read: delete it and rerun")
                yield piece

    def _open_valid(self, path: str):
        try:
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if mm.dtype != _DTYPE or mm.shape != (self.length,):
            return None
        return mm

    def _write(self, path: str) -> None:
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise BadInputError(f"cannot create cache folder {folder} ({e.strerror}): set {ENV_VAR} to a "
                                f"writable folder") from None
        need = self.length * _DTYPE.itemsize + 4096
        free = shutil.disk_usage(folder).free
        if free < need:   # fail before writing, not after filling the disk
            raise DoesNotFitError(f"{folder} has {free / 2**20:.0f} MiB free, a {self.length}-token sample needs "
                                  f"{need / 2**20:.0f} MiB: free disk space or set {ENV_VAR} to a larger disk")
        tmp = os.path.join(folder, f".{self.key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        written = 0
        try:
            with open(tmp, "wb") as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": _DTYPE.str, "fortran_order": False, "shape": (self.length,)})

                def emit(piece):
                    nonlocal written
                    f.write(memoryview(np.ascontiguousarray(piece, dtype=_DTYPE)))
                    written += len(piece)
                self.build(emit)
                if written != self.length:
                    raise AssertionError(f"prompt builder produced {written} tokens, expected {self.length}")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            _remove_quietly(tmp)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DoesNotFitError(f"no space left in {folder} for a {self.length * 4 / 2**20:.0f} MiB sample: "
                                      f"free disk space or set {ENV_VAR} to a larger disk") from None
            raise BadInputError(f"cannot write cache file in {folder} ({e.strerror}): set {ENV_VAR} to a "
                                f"writable folder") from None
        except BaseException:
            _remove_quietly(tmp)
            raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


MEMORY_MAX_TOKENS = 1 << 16   # prompts up to 64K tokens (256 KiB) are rebuilt in memory instead of cached


def prompt_source(build: Build, length: int, key_parts: dict, memory_max_tokens: int = MEMORY_MAX_TOKENS):
    """In memory up to `memory_max_tokens`, else a CachedPrompt keyed by the sha256 of `key_parts`."""
    if length <= memory_max_tokens:
        return InMemoryPrompt(build, length)
    return CachedPrompt(build, length, cache_key(key_parts))
