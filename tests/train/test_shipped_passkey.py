"""Done-when #1 of the training issue: the shipped tiny RAMba (checkpoints/ramba-tiny) retrieves the pass key at
4K on CPU (>= 95% over 55 samples across 11 depths, task seeds training never drew), and the same model with
HSA switched off scores near zero, so the retrieval really goes through HSA."""
from pathlib import Path

import numpy as np
import pytest
import torch

CKPT = Path(__file__).resolve().parents[2] / "checkpoints" / "ramba-tiny"
DEPTHS = [i / 10 for i in range(11)]
# Fixed task seed, so a failure reproduces. It is fresh relative to training: training rows come from the config
# seed's own RowSampler streams (seed 0; 1 for the seed-1 re-run; held-out rows at seed + 1_000_003), never from
# PasskeyTask.generate, and the task seeds used for the recorded evaluations are 7 (after training) and
# 101-103 (benchmarks/records/repro-cpu-4k.json). Change it only to another value outside those.
SEED = 20261124

pytestmark = pytest.mark.skipif(not (CKPT / "model.safetensors").is_file(), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def model():
    from ramba.train.checkpoint import load_model_dir
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return load_model_dir(CKPT, device="cpu").eval()


@pytest.fixture(scope="module")
def samples():
    from ramba.tasks.passkey import PasskeyTask
    from ramba.tasks.tokenizers import ByteTokenizer
    return list(PasskeyTask().generate([4096], DEPTHS, 5, SEED, ByteTokenizer()))


def test_passkey_4k_hsa_on(model, samples):
    from ramba.train.evaluate import passkey_eval
    recs = passkey_eval(model, [4096], DEPTHS, 5, seed=SEED, device=torch.device("cpu"), batch_size=11)
    assert len(recs) == 55
    acc = np.mean([r["correct"] for r in recs])
    assert acc >= 0.95, f"passkey accuracy at 4K {acc:.3f} < 0.95; misses: " + \
        ", ".join(f"d={r['depth']} {r['answer']!r}->{r['prediction']!r}" for r in recs if not r["correct"])


@torch.no_grad()
def test_passkey_4k_hsa_off_near_zero(model, samples):
    """Same prompts (2 per depth), teacher-forced, HSA switched off in a full forward: no recall."""
    some = [s for s in samples if s.index < 2]
    hits = 0
    for i in range(0, len(some), 11):
        group = some[i:i + 11]
        rows = [np.concatenate([np.concatenate(list(s.prompt_chunks())), np.asarray(s.answer_ids)]) for s in group]
        data = torch.as_tensor(np.stack(rows), dtype=torch.int64)
        ids, targets = data[:, :-1], data[:, 1:]
        answer = torch.zeros_like(targets, dtype=torch.bool)
        answer[:, 4096:] = True                                   # the key digits (not the leading space)
        # the evaluation's reset grid (anchored to the prompt's end), so only HSA differs from the run above
        logits = model(ids, hsa_enabled=False, reset_phase=model.reset_phase_for(4096))
        correct = ((logits.argmax(-1) == targets) | ~answer).all(-1)
        hits += int(correct.sum())
    assert len(some) == 22
    assert hits / len(some) <= 0.1, f"HSA-off accuracy {hits / len(some):.2f}: recall bypasses HSA"
