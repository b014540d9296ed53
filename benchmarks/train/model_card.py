"""Write checkpoints/<name>/MODEL_CARD.md from a training run's files (summary.json, log.jsonl, eval records).

    python benchmarks/train/model_card.py checkpoints/ramba-tiny --run benchmarks/records/train-ramba-tiny \
        --config configs/ramba-tiny.yaml --long reports/generalization/records/ramba-tiny.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def _acc_table(path: Path, default_device: str = "NVIDIA H100 80GB HBM3") -> list[str]:
    from ramba.evals.lengths import format_length
    by = defaultdict(lambda: [0, 0, 0, set()])
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            c = by[r["length"]]
            c[0] += 1
            c[1] += bool(r.get("correct_generated", r.get("correct")))
            c[2] += bool(r["correct_teacher_forced"])
            if r.get("task", "passkey") != "passkey":
                c[0] -= 1
                continue
            c[3].add(r.get("device", default_device))
    rows = ["| length | samples | generated | teacher-forced | device |", "|---|---|---|---|---|"]
    for L in sorted(by):
        n, g, t, dev = by[L]
        if n == 0:
            continue
        rows.append(f"| {format_length(L)} | {n} | {g / n:.0%} | {t / n:.0%} | {', '.join(sorted(dev))} |")
    return rows


def _arch_facts(cfg: dict) -> str:
    """The config fields that matter for this arch, in words."""
    arch = cfg.get("arch")
    layers = f"{cfg.get('n_lower')}+{cfg.get('n_upper')} layers, d_model {cfg.get('d_model')}"
    hsa = f"HSA: chunk {cfg.get('chunk_size')}, top-{cfg.get('topk')}, fusion={cfg.get('fusion')}"
    if arch == "ramba":
        tail = f", reset_tail={cfg['reset_tail']}" if cfg.get("reset_tail") else ""
        return f"{layers}, mamba_segment={cfg.get('mamba_segment')}{tail}, {hsa}"
    if arch == "swa-hsa":
        return f"{layers}, sliding window {cfg.get('swa_window')}, {hsa}"
    if arch == "transformer":
        return f"{layers}, {cfg.get('attn_heads')} heads, full causal attention, RoPE theta {cfg.get('rope_theta'):g}"
    return f"{layers}, Mamba2 only, no state resets"


def _held_out(fe: dict) -> str:
    line = f"Held-out rows at 4096 tokens at the end of training: answer exact {fe.get('eval_exact', float('nan')):.0%}"
    if "eval_exact_hsa_off" not in fe:
        return line + " (no HSA in this arch)."
    return (line + f", with HSA switched off {fe['eval_exact_hsa_off']:.0%}; needle chunk in the top-k "
            f"{fe.get('eval_needle_in_topk', float('nan')):.0%}, fusion weight on it "
            f"{fe.get('eval_needle_weight', float('nan')):.2f}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--run", required=True, help="folder with summary.json, log.jsonl, curves.png, eval_4k.jsonl")
    ap.add_argument("--config", required=True)
    ap.add_argument("--long", default=None, help="eval_long.py JSONL for this model")
    ap.add_argument("--notes", default="")
    ap.add_argument("--data", default="generators in `ramba/train/data.py` (copy rows, multi-query associative recall, "
                    "passkey with the evaluation task's templates and fillers plus variants, RULER-style NIAH with "
                    "distractor keys, variable tracking); curriculum 128 -> 512 -> 1024 -> 2048 -> 4096-token rows; "
                    "answer CE weight 8.")
    args = ap.parse_args(argv)
    ck, run = Path(args.ckpt), Path(args.run)
    s = json.loads((run / "summary.json").read_text())
    cfg = json.loads((ck / "config.json").read_text())
    fe = s.get("final_eval") or {}
    lines = [f"# {s['name']}", "",
             f"A {s['params'] / 1e6:.2f}M-parameter `{s['arch']}` model of the ramba-eval family, trained from scratch by "
             "this repository on synthetic byte-level long-context data (no downloaded weights or data).", "",
             "## Recipe", "",
             f"- Re-run: `ramba-eval train {args.config}` (or `python benchmarks/train/train_gpu.py {args.config} --out DIR` "
             "on a GPU; the recipe stops at its own wall-clock budget).",
             f"- Config: [`{args.config}`](../../{args.config}); model config: `config.json` here ({_arch_facts(cfg)}).",
             f"- Data: {args.data}",
             f"- Seed {s['seed']}; {s['steps']} steps; {s['tokens'] / 1e6:.0f}M tokens; {s['wall_s']:.0f} s of training "
             f"on {s['device']} ({s['dtype']}, torch {s['torch']}).", "",
             "## Training curves", "", "![curves](curves.png)", "",
             "## Evaluation", "",
             _held_out(fe), ""]
    if (run / "eval_4k.jsonl").exists():
        lines += ["Passkey task (`ramba.tasks.passkey`, default template and filler, 11 depths, task seed 7) at 4K "
                  "right after training, on the GPU:", ""] + _acc_table(run / "eval_4k.jsonl", s["device"]) + [""]
    if args.long and Path(args.long).exists():
        reset = "reset-aligned inference" if cfg.get("mamba_segment") else "no state resets"
        lines += [f"Passkey against length ({reset}; GPU runs use bf16 autocast, CPU runs fp32; "
                  "see reports/generalization/):", ""] + _acc_table(Path(args.long)) + [""]
    if args.notes:
        lines += ["## Notes", "", args.notes, ""]
    (ck / "MODEL_CARD.md").write_text("\n".join(lines))
    for name in ("curves.png",):
        if (run / name).exists():
            (ck / name).write_bytes((run / name).read_bytes())
    print((ck / "MODEL_CARD.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
