"""A fake results folder for report tests: accuracy per length, random timings and memory, no model."""
import random

from ramba.evals.records import SCHEMA_VERSION, SampleRecord, append_records, write_meta

# A wrong answer as a byte-level model emits it: a multi-byte character cut after its first byte (0xe4), which
# decodes to U+FFFD in the prediction text.
CUT_UTF8_IDS = [0x20, 0x31, 0xE4, 0x32]


def make_run(path, p_correct: dict, n=6, seed=0, task="passkey", tokenizer="byte", gpu=False, status="complete",
             fingerprint="tok-fp", depths=(0.0, 0.5, 1.0), model="fixture"):
    """accuracy p_correct[length] per cell; wrong generated predictions carry CUT_UTF8_IDS."""
    rng = random.Random(seed)
    lengths, depths = sorted(p_correct), list(depths)
    path.mkdir(parents=True)
    write_meta(path, {"run_id": path.name, "config_hash": "x", "status": status,
                      "config": {"task": task, "model": model, "lengths": lengths, "depths": depths,
                                 "samples": n, "seed": seed},
                      "backend": {"name": "fixture", "tokenizer": tokenizer, "tokenizer_fingerprint": fingerprint},
                      "git_sha": f"{seed:02d}" + "a" * 38, "env": {"device": "cuda" if gpu else "cpu"}})
    for L in lengths:
        for d in depths:
            for i in range(n):
                t = rng.uniform(0.01, 0.5)
                common = dict(schema_version=SCHEMA_VERSION, sample_id=f"{task}-L{L}-d{d}-i{i}", task=task,
                              length=L, achieved_length=L, depth=d, seed=seed, index=i, backend="fixture",
                              model=model, answer=" 12345", answer_ids=[32, 49, 50, 51, 52, 53], needle_token_pos=3,
                              prompt_s=0.01, latency_s=t * 1.1, prefill_s=t, prefill_tok_s=L / t,
                              peak_gpu_bytes=rng.randint(1 << 27, 1 << 28) if gpu else 0,
                              peak_host_bytes=rng.randint(1 << 27, 1 << 29), state_bytes=L * 512,
                              warmup_s=0.5 if (L == lengths[0] and d == depths[0] and i == 0) else 0.0)
                ok = rng.random() < p_correct[L]
                ids = [32, 49, 50, 51, 52, 53] if ok else CUT_UTF8_IDS
                text = bytes(ids).decode("utf-8", errors="replace")
                append_records(path / "records.jsonl", [
                    SampleRecord(convention=c, correct=ok, score=float(ok), prediction=text, prediction_ids=ids,
                                 **common) for c in ("generated", "teacher_forced")])
    return path
