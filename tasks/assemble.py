"""Exact-length prompt assembly at token level.

prompt = prefix + filler[0:p1] + insert_1 + filler[p1:p2] + insert_2 + ... + filler[pk:F] + suffix

F (filler tokens) = length - len(prefix) - sum(len(insert_i)) - len(suffix), so the prompt has exactly `length`
tokens for any tokenizer; the filler stream's last unit is cut where F runs out. An insert at depth d sits at
filler offset p = round(d * F): d = 0 right after the prefix, d = 1 right before the suffix (question).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ramba.errors import DoesNotFitError
from ramba.tasks.haystack import UnitStream

Emit = Callable[[np.ndarray], None]


def as_ids(ids: Sequence[int]) -> np.ndarray:
    return np.asarray(ids, dtype=np.int32).reshape(-1)


def depth_offset(depth: float, filler_tokens: int) -> int:
    """round(depth * F), halves rounded up (not to even), so depth 0.5 of 3 tokens is offset 2 on every platform."""
    return min(filler_tokens, int(math.floor(depth * filler_tokens + 0.5)))


@dataclass(frozen=True)
class Layout:
    length: int                                   # total prompt tokens
    prefix: np.ndarray                            # [P] int32
    inserts: tuple[tuple[int, np.ndarray], ...]   # (filler offset, ids [n_i] int32), offsets non-decreasing
    suffix: np.ndarray                            # [Q] int32
    origin: tuple[int, ...] = ()                  # origin[j] = index in make_layout's `inserts` of placed insert j

    @property
    def filler_tokens(self) -> int:
        return self.length - len(self.prefix) - sum(len(x) for _, x in self.inserts) - len(self.suffix)

    def insert_positions(self) -> list[int]:
        """Absolute token index where each insert starts, in insert order."""
        out, shift = [], len(self.prefix)
        for off, ids in self.inserts:
            out.append(shift + off)
            shift += len(ids)
        return out

    def positions_in_input_order(self) -> list[int]:
        """Like insert_positions(), but indexed as the `inserts` given to make_layout (before sorting by depth)."""
        placed = self.insert_positions()
        origin = self.origin or tuple(range(len(placed)))
        out = [0] * len(placed)
        for j, i in enumerate(origin):
            out[i] = placed[j]
        return out


def make_layout(length: int, prefix: Sequence[int], inserts: Sequence[tuple[float, Sequence[int]]],
                suffix: Sequence[int], what: str) -> Layout:
    """Place `inserts` (depth, ids) in a filler of the remaining size; DoesNotFitError if the fixed parts overflow.

    Inserts keep their given order when their depths tie (stable sort)."""
    prefix, suffix = as_ids(prefix), as_ids(suffix)
    parts = [(float(d), as_ids(ids)) for d, ids in inserts]
    fixed = len(prefix) + len(suffix) + sum(len(x) for _, x in parts)
    if length < fixed:
        raise DoesNotFitError(f"length {length} is too small for {what}: its fixed text (needles + question) "
                              f"takes {fixed} tokens with this tokenizer; use a length >= {fixed}")
    filler = length - fixed
    order = sorted(range(len(parts)), key=lambda i: parts[i][0])
    placed = tuple((depth_offset(parts[i][0], filler), parts[i][1]) for i in order)
    return Layout(length, prefix, placed, suffix, tuple(order))


def emit_prompt(layout: Layout, stream: UnitStream, emit: Emit, max_piece: int = 1 << 20) -> None:
    """Call `emit` with the prompt's int32 pieces in order (each <= max_piece tokens for the filler)."""
    if len(layout.prefix):
        emit(layout.prefix)
    at = 0
    for off, ids in layout.inserts:
        for piece in stream.take(off - at, max_piece):
            emit(piece)
        at = off
        if len(ids):
            emit(ids)
    for piece in stream.take(layout.filler_tokens - at, max_piece):
        emit(piece)
    if len(layout.suffix):
        emit(layout.suffix)


def build_array(layout: Layout, stream: UnitStream) -> np.ndarray:
    """The whole prompt in memory: int32 [length]."""
    out = np.empty(layout.length, dtype=np.int32)
    at = 0

    def emit(piece):
        nonlocal at
        out[at:at + len(piece)] = piece
        at += len(piece)
    emit_prompt(layout, stream, emit)
    if at != layout.length:  # an internal invariant, not a user error
        raise AssertionError(f"assembled {at} tokens, expected {layout.length}")
    return out
