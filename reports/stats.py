"""Accuracy tables with Wilson score intervals (well-behaved at 0% and 100%, unlike the normal interval), and
Newcomb's hybrid score interval for the difference of two accuracies (the noise band of a comparison)."""
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


def newcomb(k_new: int, n_new: int, k_base: int, n_base: int, z: float = Z95) -> tuple[float, float, float]:
    """(difference, lo, hi): p_new - p_base with Newcomb's hybrid score interval (his method 10, 1998), built
    from the two Wilson intervals. Valid for independent samples and conservative when both runs scored the same
    prompts (fixed seeds): a gate built on it flags only drops the samples cannot explain."""
    p1 = k_new / n_new if n_new else 0.0
    p2 = k_base / n_base if n_base else 0.0
    l1, u1 = wilson(k_new, n_new, z)
    l2, u2 = wilson(k_base, n_base, z)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(-1.0, lo), min(1.0, hi)


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


def compare(now: pd.DataFrame, base: pd.DataFrame, on: tuple[str, ...] = ("convention", "length")) -> pd.DataFrame:
    """Cells in both accuracy tables, with the difference now - base and its 95% Newcomb interval (d, d_lo, d_hi);
    `flag` = "regression" when the whole interval is below 0, "improvement" when it is above, else ""."""
    m = now.merge(base, on=list(on), suffixes=("", "_base"))
    diffs = [newcomb(int(r.k), int(r.n), int(r.k_base), int(r.n_base)) for r in m.itertuples()]
    m["d"] = [x[0] for x in diffs]
    m["d_lo"] = [x[1] for x in diffs]
    m["d_hi"] = [x[2] for x in diffs]
    m["flag"] = ["regression" if hi < 0 else "improvement" if lo > 0 else "" for _, lo, hi in diffs]
    return m


def has_partial_scores(df: pd.DataFrame) -> bool:
    """True when some record's score is neither 0 nor 1 or disagrees with `correct` (partial credit)."""
    if "score" not in df:
        return False
    return bool((df["score"].astype(float) != df["correct"].astype(float)).any())
