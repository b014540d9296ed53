"""Accuracy tables with Wilson score intervals (well-behaved at 0% and 100%, unlike the normal interval)."""
from __future__ import annotations

import math

import pandas as pd

Z95 = 1.959963984540054  # two-sided 95%


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Exact ends at k = 0 and k = n (the formula gives them up to rounding).
    lo = 0.0 if k == 0 else max(0.0, center - half)
    hi = 1.0 if k == n else min(1.0, center + half)
    return lo, hi


def accuracy_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per group: n, correct, acc, lo, hi (95% Wilson), score (mean partial score, e.g. RULER's
    string_match_all fraction; equals acc for all-or-nothing tasks)."""
    g = df.groupby(by, sort=True)["correct"].agg(["size", "sum"]).reset_index()
    g = g.rename(columns={"size": "n", "sum": "k"})
    if "score" in df:
        g["score"] = df.groupby(by, sort=True)["score"].mean().to_numpy()
    g["k"] = g["k"].astype(int)
    g["acc"] = g["k"] / g["n"]
    ci = [wilson(int(k), int(n)) for k, n in zip(g["k"], g["n"])]
    g["lo"] = [c[0] for c in ci]
    g["hi"] = [c[1] for c in ci]
    return g


def efficiency_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per length (one row per sample, so the generated rows only): median throughput, peak memory."""
    one = df.drop_duplicates("sample_id")
    return one.groupby("length", sort=True).agg(
        samples=("sample_id", "size"),
        prefill_tok_s=("prefill_tok_s", "median"),
        latency_s=("latency_s", "median"),
        peak_host_bytes=("peak_host_bytes", "max"),
        peak_gpu_bytes=("peak_gpu_bytes", "max"),
        state_bytes=("state_bytes", "max"),
    ).reset_index()


def compare(now: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Cells (convention, length) in both tables; `flag` = regression / improvement when the CIs do not overlap."""
    m = now.merge(base, on=["convention", "length"], suffixes=("", "_base"))
    flags = []
    for r in m.itertuples():
        if r.hi < r.lo_base:
            flags.append("regression")
        elif r.lo > r.hi_base:
            flags.append("improvement")
        else:
            flags.append("")
    m["flag"] = flags
    return m


def has_partial_scores(df: pd.DataFrame) -> bool:
    """True when some record's score is neither 0 nor 1 or disagrees with `correct` (partial credit)."""
    if "score" not in df:
        return False
    return bool((df["score"].astype(float) != df["correct"].astype(float)).any())
