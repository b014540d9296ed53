"""Chunk memory buffers: appends are amortised O(1) (capacity doubles), contents exact."""
import torch

from ramba.state import DeviceChunkMemory, GrowableBuffer


def test_growable_buffer_doubles_and_keeps_contents():
    buf = GrowableBuffer(2, (3,), "cpu", torch.float32, capacity=4)
    ref, reallocs, cap = [], 0, buf.data.shape[1]
    g = torch.Generator().manual_seed(0)
    for n in [1, 3, 5, 1, 17, 2, 40]:
        x = torch.randn(2, n, 3, generator=g)
        buf.append(x)
        ref.append(x)
        if buf.data.shape[1] != cap:
            reallocs, cap = reallocs + 1, buf.data.shape[1]
    assert torch.equal(buf.view(), torch.cat(ref, dim=1))
    # one reallocation per growing append, capacity doubled as often as needed: 4 -> 16 -> 32 -> 128
    assert buf.length == 69 and cap == 128 and reallocs == 3


def test_device_chunk_memory_shapes():
    mem = DeviceChunkMemory(batch=1, kv_heads=2, head_dim=8, dr=4, chunk_size=16, device="cpu", dtype=torch.float32)
    lmk = torch.randn(1, 3, 2, 4)
    k, v = torch.randn(1, 48, 2, 8), torch.randn(1, 48, 2, 8)
    mem.append(lmk, k, v)
    assert mem.num_chunks == 3 and torch.equal(mem.landmarks(), lmk)
    kk, vv = mem.keys_values()
    assert torch.equal(kk, k) and torch.equal(vv, v) and mem.nbytes() > 0
