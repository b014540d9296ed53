"""Markdown table of score / exact per task at one length, one column per model, from RULER record files (the
rows ruler_gpu.py writes). Used for the candidate-recipe comparison in reports/generalization/README.md:

    G=benchmarks/records/generalization/gpu-h200
    python benchmarks/generalization/candidates_table.py --length 4096 \
        "v2 (shipped)=$G/ruler/ramba-tiny.jsonl,$G/heldout/ramba-tiny.jsonl" \
        "v3 (v2 + 700 s, bank 3)=$G/explore/ramba-tiny-v3-ruler-4k.jsonl,$G/explore/ramba-tiny-v3-heldout-4k.jsonl" \
        "deep (4.7M, 700 s, bank 3)=$G/explore/ramba-deep-ruler-4k.jsonl,$G/explore/ramba-deep-heldout-4k.jsonl"
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

NIAH = ("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
        "niah_multivalue", "niah_multiquery")


def cells(paths: list[str], length: int) -> dict[str, tuple[float, float, int]]:
    """task -> (mean score %, exact %, n); a sample seen twice (a twin row in the held-out file) counts once."""
    seen, acc = set(), defaultdict(list)
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            if r.get("length") != length or r["sample_id"] in seen:
                continue
            seen.add(r["sample_id"])
            acc[r["task"]].append((float(r.get("score", r["correct"])), bool(r["correct"])))
    return {t: (100 * sum(s for s, _ in v) / len(v), 100 * sum(c for _, c in v) / len(v), len(v))
            for t, v in acc.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", help="NAME=records.jsonl[,more.jsonl]")
    ap.add_argument("--length", type=int, default=4096)
    a = ap.parse_args(argv)
    cols = {}
    for spec in a.models:
        name, _, paths = spec.partition("=")
        cols[name] = cells(paths.split(","), a.length)
    tasks = [t for t in NIAH + ("vt", "cwe", "fwe") if any(t in c for c in cols.values())]
    tasks += sorted({t for c in cols.values() for t in c} - set(tasks))
    print("| task | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    fmt = lambda c, t: f"{c[t][0]:.0f} / {c[t][1]:.0f}" if t in c else "–"      # noqa: E731
    for t in tasks:
        print(f"| {t} | " + " | ".join(fmt(c, t) for c in cols.values()) + " |")
        if t == NIAH[-1]:
            macro = [(sum(c[x][0] for x in NIAH) / 8, sum(c[x][1] for x in NIAH) / 8) if all(x in c for x in NIAH)
                     else None for c in cols.values()]
            print("| **NIAH macro** | " + " | ".join(f"**{m[0]:.0f} / {m[1]:.0f}**" if m else "–" for m in macro) + " |")
    print(f"\nscore / exact in %, length {a.length}; n per cell: "
          + ", ".join(f"{name} {sorted({v[2] for v in c.values()})}" for name, c in cols.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
