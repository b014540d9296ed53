"""Where a needle's key and its value fall in the 64-token chunks (byte tokenizer; no model): for each needle of a
RULER task, is the last byte of its key in the same chunk as the first byte of its value? If not, the value's
chunk landmark can only know the key through the context it was encoded with.

    python benchmarks/generalization/needle_layout.py --samples 100 \
        --out benchmarks/records/generalization/cpu/needle-layout.json
"""
from __future__ import annotations

import argparse
import json
import re
import sys

VALUE = re.compile(rb"(\d{7}|[0-9a-f-]{36})\.?$")


def layout(task: str, length: int, samples: int, seed: int, chunk: int) -> dict:
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    depths = [(i + 0.5) / samples for i in range(samples)]
    same, sizes = [], []
    for s in get_task(task).generate([length], depths, 1, seed, ByteTokenizer()):
        m = s.meta
        prompt = bytes(int(t) for t in s.prompt_ids())
        for pos, n, key in zip(m["needle_positions"], m["needle_tokens"], m["keys"]):
            text = prompt[pos:pos + n]
            value, k = VALUE.search(text), text.find(key.encode())
            if value is None or k < 0:
                continue
            same.append((pos + k + len(key) - 1) // chunk == (pos + value.start(1)) // chunk)
            sizes.append(n)
    return {"task": task, "length": length, "samples": samples, "task_seed": seed, "chunk": chunk,
            "needles": len(same), "key_and_value_start_in_one_chunk": sum(same) / max(1, len(same)),
            "needle_bytes_mean": sum(sizes) / max(1, len(sizes))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="niah_single_2,niah_multikey_1,niah_multiquery")
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rows = [layout(t, a.length, a.samples, a.seed, a.chunk) for t in a.tasks.split(",")]
    text = json.dumps(rows, indent=1) + "\n"
    if a.out:
        from ramba.atomic import atomic_write_text
        atomic_write_text(a.out, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
