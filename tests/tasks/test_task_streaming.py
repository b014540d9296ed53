import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ramba.tasks import ByteTokenizer, PasskeyTask, get_task
from ramba.tasks.cache import CachedPrompt, InMemoryPrompt


def sha(chunks):
    h = hashlib.sha256()
    for c in chunks:
        h.update(np.ascontiguousarray(c, dtype="<i4").tobytes())
    return h.hexdigest()


def test_cache_hit_is_identical_and_not_rewritten(private_cache, hf_tok):
    rng = np.random.default_rng(31)
    depth, seed = float(rng.random()), int(rng.integers(1 << 30))
    small = PasskeyTask(memory_max_tokens=1000)      # force the disk path at a test-sized length
    for tok in (ByteTokenizer(), hf_tok):
        (s1,) = list(small.generate([9_999], [depth], 1, seed, tok))
        assert isinstance(s1.source, CachedPrompt) and not os.path.exists(s1.source.path)
        ids1 = np.concatenate(list(s1.prompt_chunks(777)))
        path = s1.source.path
        assert path.startswith(str(private_cache)) and path.endswith(".npy")
        before = os.stat(path)
        (s2,) = list(small.generate([9_999], [depth], 1, seed, tok))
        assert s2.source.path == path
        ids2 = s2.prompt_ids()
        after = os.stat(path)
        assert np.array_equal(ids1, ids2)
        assert (before.st_ino, before.st_mtime_ns, before.st_size) == (after.st_ino, after.st_mtime_ns, after.st_size)
        # in memory or on disk, a sample has the same ids
        (m,) = list(PasskeyTask().generate([9_999], [depth], 1, seed, tok))
        assert isinstance(m.source, InMemoryPrompt) and np.array_equal(m.prompt_ids(), ids1)
        assert not any(name.endswith(".tmp") for _, _, files in os.walk(private_cache) for name in files)
    # other tokenizer, depth or seed -> another file
    keys = {s.source.key for s in small.generate([5000], [0.1, 0.2], 1, 1, ByteTokenizer())}
    keys |= {s.source.key for s in small.generate([5000], [0.1], 1, 2, ByteTokenizer())}
    keys |= {s.source.key for s in small.generate([5000], [0.1], 1, 1, hf_tok)}
    assert len(keys) == 4


def test_corrupt_cache_file_is_rebuilt(private_cache):
    small = PasskeyTask(memory_max_tokens=100)
    (s,) = list(small.generate([4000], [0.4], 1, 9, ByteTokenizer()))
    good = s.prompt_ids().copy()
    with open(s.source.path, "r+b") as f:      # truncate it, as a crash without the atomic rename would
        f.truncate(1000)
    assert not s.source.exists()
    assert np.array_equal(s.prompt_ids(), good)


def test_unwritable_cache_dir_is_a_bad_input(tmp_path, monkeypatch):
    from ramba.errors import BadInputError
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(blocker / "sub"))   # a folder under a file cannot exist
    (s,) = list(PasskeyTask(memory_max_tokens=100).generate([500], [0.5], 1, 0, ByteTokenizer()))
    with pytest.raises(BadInputError, match="RAMBA_EVAL_CACHE"):
        s.prompt_ids()


# Runs in a fresh interpreter. Linux carries the parent's peak RSS into ru_maxrss across fork+exec (exec keeps
# the larger of the old and new high-water marks), so a big pytest parent would inflate it: the child reports
# VmHWM from /proc (its own peak since exec) where it exists, and resource.getrusage otherwise.
_CHILD = textwrap.dedent("""
    import hashlib, json, resource, sys, time

    def peak_kib():
        try:
            with open("/proc/self/status") as f:
                return int(next(line.split()[1] for line in f if line.startswith("VmHWM:")))
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    import numpy as np
    from ramba.tasks import ByteTokenizer, get_task
    length, depth, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    (s,) = list(get_task("passkey").generate([length], [depth], 1, seed, ByteTokenizer()))
    h, n, pos = hashlib.sha256(), 0, s.needle_token_pos
    needle = b""
    for c in s.prompt_chunks():
        assert c.dtype == np.int32
        h.update(c.astype("<i4").tobytes())
        if n <= pos < n + len(c):
            needle = bytes(c[pos - n:pos - n + 20].astype(np.uint8))
        n += len(c)
    print(json.dumps({"n": n, "sha": h.hexdigest(), "seconds": time.perf_counter() - t0, "needle": needle.decode(),
                      "key": s.meta["key"], "peak_kib": peak_kib(),
                      "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


def test_16m_sample_streams_with_bounded_memory(private_cache):
    length, depth, seed = 1 << 24, 0.6180339, 4242
    env = dict(os.environ, RAMBA_EVAL_CACHE=str(private_cache))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(length), str(depth), str(seed)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["n"] == length
    assert rec["needle"].startswith(" The pass key is")
    assert rec["peak_kib"] < 1 << 20, rec          # < 1 GiB peak RSS (the int32 prompt alone is 64 MiB)
    print(f"16M-token sample: {rec['seconds']:.2f} s, peak RSS {rec['peak_kib'] / 1024:.0f} MiB "
          f"(ru_maxrss incl. the parent's: {rec['ru_maxrss_kib'] / 1024:.0f} MiB)")
    # the same sample in this process (another interpreter, same seed) has the same ids: no hidden global state
    (s,) = list(get_task("passkey").generate([length], [depth], 1, seed, ByteTokenizer()))
    assert s.meta["key"] == rec["key"] and sha(s.prompt_chunks()) == rec["sha"]


def test_ensure_cached_and_to_dict(private_cache):
    small = PasskeyTask(memory_max_tokens=2000)
    (short, long_) = list(small.generate([1500, 6000], [0.5], 1, 2, ByteTokenizer()))
    assert short.ensure_cached() is None
    path = long_.ensure_cached()
    assert path == long_.source.path and os.path.exists(path)
    d = long_.to_dict()
    assert json.loads(json.dumps(d)) == d and d["cache_path"] == path and d["meta"]["key"] == long_.meta["key"]


def test_disk_too_small_is_does_not_fit(private_cache, monkeypatch):
    import shutil as _shutil

    from ramba.errors import DoesNotFitError
    real = _shutil.disk_usage
    monkeypatch.setattr("ramba.tasks.cache.shutil.disk_usage",
                        lambda p: real(p)._replace(free=1000))      # pretend the disk is full
    (s,) = list(PasskeyTask(memory_max_tokens=100).generate([5000], [0.5], 1, 0, ByteTokenizer()))
    with pytest.raises(DoesNotFitError, match="RAMBA_EVAL_CACHE"):
        s.prompt_ids()
    assert not any(files for _, _, files in os.walk(private_cache))
