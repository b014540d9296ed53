"""Parse the CLI's length and depth grids: `4K`, `64M`, `4096`, `4K,16K`, `4K..1M`; `0,0.5,1` or `5`.

Pure Python on purpose: the dry-run path imports this and must not pull in torch.
"""
from __future__ import annotations

import re

from ramba.errors import BadInputError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_LENGTH_RE = re.compile(r"^\s*(\d+)\s*([KMG]?)\s*$", re.IGNORECASE)
MAX_LENGTH = 1 << 36  # 64G tokens: far past anything we can run, still well inside int64 offsets


def parse_length(text: str | int) -> int:
    """'4K' -> 4096, '64M' -> 67108864, '4096' -> 4096. Binary units: 1K = 1024 tokens."""
    if isinstance(text, bool):
        raise BadInputError(f"length {text!r} is not a number; write e.g. 4096, 4K or 64M")
    if isinstance(text, int):
        value = text
    else:
        m = _LENGTH_RE.match(str(text))
        if not m:
            raise BadInputError(
                f"malformed length {text!r}; write a positive token count such as 4096, 4K, 64K, 1M or 64M")
        value = int(m.group(1)) * _UNITS[m.group(2).upper()]
    if value <= 0:
        raise BadInputError(f"length {text!r} must be positive; write e.g. 4096, 4K or 64M")
    if value > MAX_LENGTH:
        raise BadInputError(f"length {text!r} is larger than the 64G-token limit; pick a smaller length")
    return value


def parse_lengths(text: str | int | list | tuple) -> tuple[int, ...]:
    """A list ('4K,16K,64K'), a doubling range ('4K..1M' = 4K, 8K, ..., 1M) or a mix; sorted, deduplicated."""
    if isinstance(text, (list, tuple)):
        parts = [str(p) for p in text]
    else:
        parts = [p for p in str(text).split(",")]
    out: list[int] = []
    for part in parts:
        part = part.strip()
        if not part:
            raise BadInputError(f"empty entry in lengths {text!r}; write e.g. 4K,16K,64K or 4K..1M")
        if ".." in part:
            lo_s, _, hi_s = part.partition("..")
            lo, hi = parse_length(lo_s), parse_length(hi_s)
            if hi < lo:
                raise BadInputError(f"length range {part!r} runs backwards; write the smaller end first (4K..1M)")
            n = lo
            while n <= hi:
                out.append(n)
                n *= 2
            if out[-1] != hi:
                raise BadInputError(
                    f"length range {part!r}: {hi} is not {lo} times a power of two; ranges double, e.g. 4K..1M")
        else:
            out.append(parse_length(part))
    return tuple(sorted(set(out)))


def parse_depths(text: str | int | float | list | tuple) -> tuple[float, ...]:
    """'0,0.25,0.5' -> those depths; a single integer N >= 2 (e.g. '5') -> N evenly spaced in [0, 1].

    A single '1' or '0' is a depth, not a count (a one-point grid is written as that depth)."""
    if isinstance(text, (list, tuple)):
        parts = [str(p) for p in text]
    else:
        parts = [p.strip() for p in str(text).split(",")]
    if len(parts) == 1 and re.fullmatch(r"\d+", parts[0]) and int(parts[0]) >= 2:
        n = int(parts[0])
        if n > 1001:
            raise BadInputError(f"depth grid of {n} points is too fine; use at most 1001 points")
        return tuple(round(i / (n - 1), 6) for i in range(n))
    depths = []
    for p in parts:
        try:
            d = float(p)
        except ValueError:
            raise BadInputError(
                f"malformed depth {p!r}; write fractions in [0, 1] like 0,0.25,0.5 or a count like 5") from None
        if not 0.0 <= d <= 1.0:
            raise BadInputError(f"depth {p} is outside [0, 1]; pass fractions of the haystack (0 = start, 1 = end) such as 0,0.5,1")
        depths.append(d)
    return tuple(sorted(set(depths)))


def format_length(n: int) -> str:
    """4096 -> '4K', 67108864 -> '64M', 1000 -> '1000'."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)
