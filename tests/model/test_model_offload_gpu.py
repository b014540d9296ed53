"""CUDA only: host (both block modes: pageable, the default, and pinned with RAMBA_HOST_PINNED=1; staged bulk
gathers) and disk placements give the same logits as the in-GPU memory with the Triton ops, through segmented
prefill, logits="last" and decode, and after a state is dropped and rebuilt (resume); peak GPU memory of an
offloaded prefill does not hold the K/V. The pageable mode (writer thread, side-stream pageable D2H) keeps exact
records."""
import pytest
import torch

import ramba.offload as off
from ramba import RambaConfig, RambaModel
from ramba.offload import HostStore

from .helpers import run_segments

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RambaModel(RambaConfig.from_preset("tiny", mamba_segment=512)).cuda().eval()


@pytest.mark.parametrize("memory", ["host", "host-pinned", "disk"])
def test_offloaded_equals_gpu_on_cuda(model, memory, tmp_path, monkeypatch):
    if memory == "host-pinned":
        monkeypatch.setenv("RAMBA_HOST_PINNED", "1")
        memory = "host"
    ids = torch.randint(0, 256, (1, 5000), device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    kw = dict(memory=memory, memory_dir=tmp_path) if memory == "disk" else dict(memory=memory)
    for sizes in ([5000], [1024], [777, 1]):
        ref = run_segments(model, ids, sizes)
        got = run_segments(model, ids, sizes, **kw)
        # same chunks, same op per slot: equal up to summation order inside the kernels
        assert (got - ref).abs().max().item() <= 1e-4, sizes
    assert not list(tmp_path.iterdir())


def test_offloaded_gpu_memory_flat(model):
    torch.cuda.synchronize()
    peaks = {}
    for memory in ("gpu", "host"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        st = model.allocate_state(1, prompt_length=1 << 20, memory=memory)      # gpu: presized K/V
        for s in range(0, 1 << 20, 1 << 16):
            ids = torch.randint(0, 256, (1, 1 << 16), device="cuda")
            model.prefill(ids, st, logits="last")
        torch.cuda.synchronize()
        peaks[memory] = torch.cuda.max_memory_allocated() - base
        st.memory.close()
        del st
    kv = (1 << 20) * 2 * model.cfg.hsa_kv_heads * model.cfg.hsa_head_dim * 4
    assert peaks["gpu"] - peaks["host"] > 0.8 * kv, peaks     # the K/V (256 MiB fp32) is not on the GPU


@pytest.mark.parametrize("ahead_bytes", [1 << 30, 1], ids=["unbounded", "one-write"])
def test_pageable_host_store_exact_on_cuda(ahead_bytes, monkeypatch):
    """CUDA records into pageable blocks go through the writer thread; temporaries dropped right after write()
    stay alive until copied (junk allocated after them does not land in the store); blocks boundaries crossed."""
    monkeypatch.setattr(off, "WRITE_AHEAD_BYTES", ahead_bytes)
    rec = (2, 64)
    st = HostStore(rec, torch.float32, pin=False, block_bytes=5 * 512, first_block_bytes=512)
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(300, *rec, generator=g)
    c, junk = 0, []
    while c < 300:
        n = min(300 - c, int(torch.randint(1, 12, (1,), generator=g)))
        st.write(c, ref[c:c + n].cuda() * 1)                  # a temporary: only the writer keeps it alive
        junk.append(torch.full((n, *rec), -1.0, device="cuda"))
        c += n
    assert st._writer is not None and not st.blocks[0].is_pinned()
    st.sync()
    assert torch.equal(st.read(torch.arange(300)), ref)
    st.close()


def test_pageable_host_equals_gpu_on_cuda(model, monkeypatch):
    monkeypatch.setenv("RAMBA_HOST_PINNED", "0")
    ids = torch.randint(0, 256, (1, 5000), device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    for sizes in ([5000], [1024], [777, 1]):
        ref = run_segments(model, ids, sizes)
        got = run_segments(model, ids, sizes, memory="host")
        assert (got - ref).abs().max().item() <= 1e-4, sizes      # same bound as the pinned host test
    st = model.allocate_state(1, prompt_length=3000, memory="host")
    model.prefill(ids[:, :3000], st, logits="last")
    assert not st.memory.store.pin and st.memory.store._writer is not None
    st.memory.close()


@pytest.mark.parametrize("memory", ["gpu", "host"])
def test_prefill_stream_on_cuda_equals_full_forward(model, memory):
    """prefill_stream (pieces re-cut on reset boundaries, logits="none" until the last call) on CUDA: the last
    logits equal a full forward's, and an offloaded memory is gathered from once."""
    ids = torch.randint(0, 256, (1, 5000), device="cuda", generator=torch.Generator("cuda").manual_seed(2))
    ref = run_segments(model, ids, [5000])[:, -1]                                   # [1, V]
    state = model.allocate_state(1, device="cuda", memory=memory)
    out, state = model.prefill_stream((ids[:, s:s + 1100] for s in range(0, 5000, 1100)), state)
    assert (out[:, 0] - ref).abs().max().item() <= 1e-4
    if memory == "host":
        assert state.memory.gathers == 1
    state.memory.close()
