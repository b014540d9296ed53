"""Offloaded chunk memory (ramba/offload.py): `host` and `disk` placements give the same logits as `gpu`
(bit-identical on CPU) for full prefill, segmented prefill and decode; the stores keep exact contents across
block boundaries, file growth and cache eviction; the disk file never outlives the run unless kept. The host
store's pageable mode (writer thread, forced on CPU with writer_thread=True) gives the same records and logits,
does not stall a write, and raises a failed copy in the caller."""
import os
import threading
import time

import pytest
import torch

import ramba.offload as off
from ramba.errors import BadInputError
from ramba.offload import DiskStore, HostStore, OffloadedChunkMemory, make_chunk_memory

from .helpers import run_segments, small_model

T = 230
SIZES = ([T], [100], [63], [1, 40])
# small blocks / cache so a 230-token run crosses host blocks, grows the file and evicts cached chunks
HOST = dict(memory="host", block_bytes=3 * 2 * 2 * 16 * 2 * 16 * 4, first_block_bytes=1)
DISK = dict(memory="disk", cache_bytes=5 * 2 * 2 * 16 * 2 * 16 * 4)


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 256, (2, T), generator=torch.Generator().manual_seed(11))


def _placements(tmp_path):
    return {"host": HOST, "disk": dict(DISK, memory_dir=tmp_path)}


@pytest.mark.parametrize("segment", [None, 48], ids=["no-reset", "reset48"])
def test_placements_identical_to_gpu(segment, ids, tmp_path):
    model = small_model("ramba", mamba_segment=segment)
    with torch.no_grad():
        full = model(ids)
    for sizes in SIZES:
        ref = run_segments(model, ids, sizes)
        assert (ref - full).abs().max() <= 1e-4
        for name, kw in _placements(tmp_path).items():
            got = run_segments(model, ids, sizes, **kw)
            assert torch.equal(got, ref), f"{name} sizes {sizes}: max |dlogit| {(got - ref).abs().max():.3g}"
    assert not any(tmp_path.iterdir()), "the disk tier left a file behind"


def _last_then_decode(model, ids, **kw):
    """prefill(logits="last") of 200 tokens in two calls, then 20 greedy decode steps (crossing a chunk boundary)
    -> (the last-token logits of every call and step [22, B, V], the state)."""
    st = model.allocate_state(2, prompt_length=200, **kw)
    seq = []
    for a, b in [(0, 90), (90, 200)]:
        lg, st = model.prefill(ids[:, a:b], st, logits="last")
        seq.append(lg[:, -1])
    tok = seq[-1].argmax(-1)
    for _ in range(20):
        lg, st = model.decode(tok, st)
        seq.append(lg)
        tok = lg.argmax(-1)
    return torch.stack(seq), st


def test_prefill_last_and_decode_identical(ids, tmp_path):
    """logits="last" (the backend's path: upper stack only after the last reset) then greedy decode."""
    model = small_model("ramba", mamba_segment=48)
    outs = {}
    for name, kw in {"gpu": {}, **_placements(tmp_path)}.items():
        outs[name], st = _last_then_decode(model, ids, **kw)
        assert st.memory.num_chunks == 220 // 16
        st.memory.close()
    assert torch.equal(outs["host"], outs["gpu"]) and torch.equal(outs["disk"], outs["gpu"])


def test_memory_dtype_bf16_identical_across_placements(ids, tmp_path):
    model = small_model("ramba")
    ref = run_segments(model, ids, [100], memory_dtype=torch.bfloat16)
    f32 = run_segments(model, ids, [100])
    for name, kw in _placements(tmp_path).items():
        got = run_segments(model, ids, [100], memory_dtype=torch.bfloat16, **kw)
        assert torch.equal(got, ref), name
    # real, and small on average (a random model's near-tied selections may flip a chunk: a few large
    # differences); the effect on accuracy is measured by `ramba-eval bench`/passkey runs, not assumed
    err = (ref - f32).abs()
    assert err.max() > 0 and err.mean() < 0.05, f"bf16 memory moved logits by {err.mean():.3g} on average"


def test_streamed_landmarks_same_selection(ids):
    """Landmarks past landmarks_max_bytes move to host and selection streams them in blocks with a running
    top-k: same chunks selected, same logits (fp32 rounding of blocked scores aside)."""
    model = small_model("ramba")
    ref = run_segments(model, ids, [100, 1])
    old = off.LANDMARK_BLOCK_CHUNKS
    off.LANDMARK_BLOCK_CHUNKS = 3                                 # several blocks at this size
    try:
        got = run_segments(model, ids, [100, 1], memory="host", landmarks_max_bytes=5 * 2 * 2 * 16 * 4)
    finally:
        off.LANDMARK_BLOCK_CHUNKS = old
    assert (got - ref).abs().max() <= 1e-5


def test_gather_dedups_and_reindexes():
    mem = make_chunk_memory("host", 1, small_model("ramba").cfg, "cpu", torch.float32)
    S, H, d = 16, 2, 16
    g = torch.Generator().manual_seed(0)
    k, v = torch.randn(1, 5 * S, H, d, generator=g), torch.randn(1, 5 * S, H, d, generator=g)
    mem.append(torch.randn(1, 5, H, 16, generator=g), k, v)
    idx = torch.tensor([[[[4, 2, -1], [3, 3, 7]], [[2, 0, -1], [-1, -1, -1]]]])     # [B=1, T=2, H=2, K=3]
    ks, vs, local = mem.gather(idx)
    uniq = [0, 2, 3, 4]                                           # deduplicated; 7 >= C and -1 are invalid
    assert ks.shape[1] == len(uniq) * S
    for j, c in enumerate(uniq):
        assert torch.equal(ks[:, j * S:(j + 1) * S], k[:, c * S:(c + 1) * S])
        assert torch.equal(vs[:, j * S:(j + 1) * S], v[:, c * S:(c + 1) * S])
    assert local.tolist() == [[[[3, 1, -1], [2, 2, -1]], [[1, 0, -1], [-1, -1, -1]]]]
    # the device memory's generic gather gives the same
    dev = make_chunk_memory("gpu", 1, small_model("ramba").cfg, "cpu", torch.float32)
    dev.append(torch.zeros(1, 5, H, 16), k, v)
    k2, v2, l2 = dev.gather(idx)
    assert torch.equal(k2, ks) and torch.equal(v2, vs) and torch.equal(l2, local)


def test_host_store_blocks_exact():
    st = HostStore((2, 3), torch.float32, block_bytes=4 * 24, first_block_bytes=24, pin=False)
    ref = torch.randn(23, 2, 3)
    c = 0
    for n in [1, 4, 7, 2, 9]:
        st.write(c, ref[c:c + n])
        c += n
    assert [b.shape[0] for b in st.blocks] == [1, 2, 4, 4, 4, 4, 4]   # doubles to the cap, never copies
    ids = torch.tensor([0, 1, 2, 3, 6, 7, 13, 22])
    assert torch.equal(st.read(ids), ref[ids])


@pytest.mark.parametrize("ahead", [5, 23, 40], ids=["part", "exact", "more"])
def test_host_store_allocate_ahead_same_blocks_and_contents(ahead):
    """Blocks allocated by the background thread (some, all or more than the writes need) are the blocks _grow
    would make, in order, and hold the same records."""
    st = HostStore((2, 3), torch.float32, block_bytes=4 * 24, first_block_bytes=24, pin=False, allocate_ahead=ahead)
    ref = torch.randn(23, 2, 3)
    c = 0
    for n in [1, 4, 7, 2, 9]:
        st.write(c, ref[c:c + n])
        c += n
    assert [b.shape[0] for b in st.blocks] == [1, 2, 4, 4, 4, 4, 4]
    assert torch.equal(st.read(torch.arange(23)), ref)
    st.close()
    assert st._ahead_thread is None and not st.blocks


def test_host_store_allocate_ahead_failure_surfaces_in_the_write(monkeypatch):
    """A block the background threads fail to allocate raises in the write that needs it (it used to hang)."""
    real = HostStore._populated_block
    calls = []

    def flaky(self, n):
        calls.append(n)
        if len(calls) == 2:
            raise MemoryError("planted: no host memory")
        return real(self, n)

    monkeypatch.setattr(HostStore, "_populated_block", flaky)
    monkeypatch.setattr(off, "POPULATE_THREADS", 1)
    st = HostStore((2, 3), torch.float32, block_bytes=4 * 24, first_block_bytes=24, pin=False, allocate_ahead=40)
    st.write(0, torch.randn(1, 2, 3))                      # the first block is there
    done = {}

    def second_write():
        try:
            st.write(1, torch.randn(3, 2, 3))
        except MemoryError as e:
            done["error"] = e

    t = threading.Thread(target=second_write, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the write hung on a failed background allocation"
    assert "planted" in str(done.get("error"))
    st.close()


def test_host_store_close_does_not_wait_for_the_whole_allocation(monkeypatch):
    """close() cancels the blocks not yet allocated ahead instead of waiting for all of them."""
    import time
    real = HostStore._populated_block

    def slow(self, n):
        time.sleep(0.2)
        return real(self, n)

    monkeypatch.setattr(HostStore, "_populated_block", slow)
    monkeypatch.setattr(off, "POPULATE_THREADS", 1)
    st = HostStore((2, 3), torch.float32, block_bytes=24, first_block_bytes=24, pin=False, allocate_ahead=50)
    st.write(0, torch.randn(1, 2, 3))
    t0 = time.perf_counter()
    st.close()                                             # 49 blocks x 0.2 s are still to come
    assert time.perf_counter() - t0 < 2.0
    assert st._ahead_thread is None and not st.blocks


@pytest.mark.parametrize("writer", [False, True], ids=["caller-copies", "writer-thread"])
def test_host_allocate_ahead_identical_to_gpu(ids, monkeypatch, writer):
    """A presized host memory (prompt_length) allocates its blocks ahead (pageable here: mapped by a thread
    pool), with and without the writer thread: same logits as the gpu placement, bit for bit."""
    model = small_model("ramba", mamba_segment=48)
    ref = run_segments(model, ids, [100], prompt_length=T)
    state = model.allocate_state(ids.shape[0], prompt_length=T, **HOST, **({"writer_thread": True} if writer else {}))
    assert state.memory.store._ahead_thread is not None                  # presized: allocated ahead
    state.memory.close()
    got = run_segments(model, ids, [100], prompt_length=T, **HOST, **({"writer_thread": True} if writer else {}))
    assert torch.equal(got, ref)


REC = 24                                                          # bytes of one (2, 3) fp32 record


def _threaded_store(**kw):
    return HostStore((2, 3), torch.float32, block_bytes=4 * REC, first_block_bytes=REC, pin=False,
                     writer_thread=True, **kw)


@pytest.mark.parametrize("ahead_bytes", [1 << 30, 3 * REC], ids=["unbounded", "bounded"])
def test_host_store_writer_thread_exact(ahead_bytes, monkeypatch):
    """Many threaded writes, some spanning blocks (and, bounded, waiting on the write-ahead limit): after sync()
    every record is right, in the blocks the caller-side _grow makes."""
    monkeypatch.setattr(off, "WRITE_AHEAD_BYTES", ahead_bytes)
    st = _threaded_store()
    g = torch.Generator().manual_seed(3)
    ref = torch.randn(200, 2, 3, generator=g)
    c = 0
    while c < 200:
        n = min(200 - c, int(torch.randint(1, 9, (1,), generator=g)))
        st.write(c, ref[c:c + n])
        c += n
    st.write(5, ref[5:11] * 2)                                    # rewrites land in order, after the first
    ref[5:11] *= 2
    st.sync()
    assert st._writer._items == 0 and st._writer._bytes == 0
    assert [b.shape[0] for b in st.blocks][:4] == [1, 2, 4, 4] and st.capacity >= 200
    assert torch.equal(st.read(torch.arange(200)), ref)
    ids = torch.tensor([0, 1, 2, 3, 6, 7, 13, 99, 199])
    assert torch.equal(st.read(ids), ref[ids])
    thread = st._writer._thread
    st.close()
    assert not thread.is_alive() and st._writer is None and not st.blocks


def test_host_store_writer_thread_under_inference_mode():
    """The runner prefills under torch.inference_mode(), so the blocks are inference tensors; inference mode is
    per thread, and the writer thread must still be allowed to fill them (an H200 run failed here once)."""
    st = _threaded_store()
    ref = torch.randn(12, 2, 3)
    with torch.inference_mode():
        for c in range(0, 12, 3):
            st.write(c, ref[c:c + 3] + 0)             # an inference tensor, as the model's records are
        st.sync()
        assert st.blocks[0].is_inference()
        assert torch.equal(st.read(torch.arange(12)), ref)
    st.close()


def test_host_store_writer_thread_does_not_stall(monkeypatch):
    """write() returns while its copy is still held back; with the write-ahead limit full the next write waits
    for the thread; read() waits for every copy."""
    gate = threading.Event()
    real = off._copy_spans

    def held(spans, recs):
        gate.wait(10)
        real(spans, recs)

    monkeypatch.setattr(off, "_copy_spans", held)
    monkeypatch.setattr(off, "WRITE_AHEAD_BYTES", 4 * REC)
    st = _threaded_store()
    ref = torch.randn(8, 2, 3)
    st.write(0, ref[:4])                                          # queued, its copy held: returns at once
    assert st._writer._items == 1 and st.length == 4
    second = threading.Thread(target=st.write, args=(4, ref[4:]))
    second.start()
    time.sleep(0.1)
    assert second.is_alive(), "a write past WRITE_AHEAD_BYTES must wait for the queued copies"
    gate.set()
    second.join(10)
    assert not second.is_alive()
    assert torch.equal(st.read(torch.arange(8)), ref)
    st.close()


def test_host_store_writer_thread_error_surfaces(monkeypatch):
    """An exception inside the writer thread is raised in the caller by sync/write/read/close, never lost; close
    still frees the store."""
    calls = []

    def broken(spans, recs):
        calls.append(len(spans))
        raise RuntimeError("copy failed in the writer thread")

    monkeypatch.setattr(off, "_copy_spans", broken)
    st = _threaded_store()
    st.write(0, torch.ones(3, 2, 3))                              # returns: the failure is in the thread
    with pytest.raises(RuntimeError, match="writer thread"):
        st.sync()
    with pytest.raises(RuntimeError, match="writer thread"):
        st.write(3, torch.ones(1, 2, 3))
    with pytest.raises(RuntimeError, match="writer thread"):
        st.read(torch.arange(3))
    thread = st._writer._thread
    with pytest.raises(RuntimeError, match="writer thread"):
        st.close()
    assert not thread.is_alive() and not st.blocks and calls == [2]
    st.close()                                                    # reported once closed: a second close is quiet


def test_host_writer_thread_error_surfaces_in_model(ids, monkeypatch):
    def broken(spans, recs):
        raise RuntimeError("copy failed in the writer thread")

    monkeypatch.setattr(off, "_copy_spans", broken)
    with pytest.raises(RuntimeError, match="writer thread"):
        run_segments(small_model("ramba"), ids, [100], writer_thread=True, **HOST)


@pytest.mark.parametrize("ahead_bytes", [1 << 30, 1], ids=["unbounded", "one-write"])
def test_host_writer_thread_identical_to_gpu(ahead_bytes, ids, monkeypatch):
    """RAMBA_HOST_PINNED=0 and the writer thread (forced on CPU): segmented prefill, logits="last" and decode
    give the gpu placement's logits, bit for bit."""
    monkeypatch.setenv("RAMBA_HOST_PINNED", "0")
    monkeypatch.setattr(off, "WRITE_AHEAD_BYTES", ahead_bytes)
    model = small_model("ramba", mamba_segment=48)
    for sizes in SIZES:
        ref = run_segments(model, ids, sizes)
        got = run_segments(model, ids, sizes, writer_thread=True, **HOST)
        assert torch.equal(got, ref), f"sizes {sizes}: max |dlogit| {(got - ref).abs().max():.3g}"
    outs = {}
    for name, kw in {"gpu": {}, "host": dict(writer_thread=True, **HOST)}.items():
        outs[name], st = _last_then_decode(model, ids, **kw)
        if name == "host":
            store = st.memory.store
            assert not store.pin and store._writer is not None          # the thread did the copies
        st.memory.close()
    assert torch.equal(outs["host"], outs["gpu"])


def test_host_pinned_env(monkeypatch):
    cfg = small_model("ramba").cfg
    # default and "0": pageable blocks; "1": pinned when CUDA is up
    for raw, pin in [(None, False), ("1", torch.cuda.is_available()), ("0", False)]:
        if raw is None:
            monkeypatch.delenv("RAMBA_HOST_PINNED", raising=False)
        else:
            monkeypatch.setenv("RAMBA_HOST_PINNED", raw)
        mem = make_chunk_memory("host", 1, cfg, "cpu", torch.float32)
        assert mem.store.pin is pin and mem.store.writer_thread is None
        mem.close()
    monkeypatch.setenv("RAMBA_HOST_PINNED", "yes")
    with pytest.raises(BadInputError, match="RAMBA_HOST_PINNED"):
        make_chunk_memory("host", 1, cfg, "cpu", torch.float32)


def test_disk_store_grow_cache_and_cleanup(tmp_path):
    st = DiskStore((4,), torch.bfloat16, tmp_path, capacity=2, cache_bytes=3 * 8)
    assert not list(tmp_path.iterdir())                          # unlinked at once
    ref = torch.randn(20, 4).bfloat16()
    for c in range(0, 20, 5):
        st.write(c, ref[c:c + 5])
    assert st.capacity >= 20
    for ids in ([1, 2, 3], [2, 3, 9], [0, 1, 2, 3, 4, 5], [9, 19]):
        t = torch.tensor(ids)
        assert torch.equal(st.read(t), ref[t])
    assert st.hits > 0 and st.misses > 0
    st.close()
    kept = DiskStore((4,), torch.float32, tmp_path, keep=True)
    kept.write(0, torch.ones(3, 4))
    assert len(list(tmp_path.iterdir())) == 1
    kept.close(keep=False)
    assert not list(tmp_path.iterdir())


def test_interrupted_run_leaves_no_file(tmp_path):
    """A process killed mid-prefill (SIGKILL: no cleanup code runs) leaves no memory file."""
    import subprocess
    import sys
    code = (
        "import os, signal, torch\n"
        "from tests.model.helpers import small_model\n"
        "m = small_model('ramba')\n"
        f"st = m.allocate_state(1, memory='disk', memory_dir={str(tmp_path)!r})\n"
        "m.prefill(torch.randint(0, 256, (1, 100)), st)\n"
        "assert st.memory.num_chunks == 6\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # -P + the root appended to PYTHONPATH: an installed ramba (GPU machines' site folder) comes before the checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), root]))}
    r = subprocess.run([sys.executable, "-P", "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == -9, r.stderr[-2000:]
    assert not list(tmp_path.iterdir())


def test_offloaded_memory_accounting():
    mem = make_chunk_memory("disk", 1, small_model("ramba").cfg, "cpu", torch.float32, cache_bytes=1 << 16)
    assert isinstance(mem, OffloadedChunkMemory) and not mem.resident
    mem.append(torch.zeros(1, 2, 2, 16), torch.zeros(1, 32, 2, 16), torch.zeros(1, 32, 2, 16))
    assert mem.disk_nbytes() >= 2 * 2 * 16 * 2 * 16 * 4 and mem.host_nbytes() == 1 << 16
    assert mem.device_nbytes() > 0                                 # the landmarks
    mem.close()
