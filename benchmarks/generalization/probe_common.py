"""What the CPU selection probes (selection_rank_probe.py, oracle_selection_probe.py) share: their command line,
the model on CPU, their samples (task seed 101, depths spread over (0, 1), as ruler_gpu.py) and their record."""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

TASK_SEED = 101
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def probe_args(argv, samples: int) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--tasks", default="niah_multikey_3,niah_multikey_1")
    ap.add_argument("--lengths", default="4096,16384")
    ap.add_argument("--samples", type=int, default=samples)
    ap.add_argument("--out", required=True)
    return ap.parse_args(argv)


def load_cpu_model(path: str):
    from ramba.train.checkpoint import load_model_dir
    return load_model_dir(path, device="cpu").eval()


def probe_samples(task: str, length: int, n: int):
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import ByteTokenizer
    depths = [(i + 0.5) / n for i in range(n)]
    return get_task(task).generate([length], depths, 1, TASK_SEED, ByteTokenizer())


def write_probe_record(out: str, kind: str, checkpoint: str, rows: list, t0: float, **fields) -> None:
    from ramba.atomic import atomic_write_text
    from ramba.evals.env import git_sha
    rec = dict(kind=kind, checkpoint=checkpoint, task_seed=TASK_SEED, **fields, git_sha=git_sha(REPO),
               torch=torch.__version__, device="cpu", wall_s=round(time.time() - t0, 1), rows=rows)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic_write_text(out, json.dumps(rec, indent=1))
