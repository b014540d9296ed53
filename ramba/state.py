"""Inference state: per-layer mixer states, the partial-chunk buffer and the chunk memory.

The model allocates a RambaState, prefill/decode take and return it, and the state advances its own position:
callers never bump offsets. Chunk memory sits behind the ChunkMemory interface (in-device buffers here;
offload tiers implement the same methods in their own module).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


class GrowableBuffer:
    """A [B, n, *rest] tensor appended along dim 1 with amortised O(1) appends (capacity doubles; no
    torch.cat per append). `view()` is the filled part."""

    def __init__(self, batch: int, rest: tuple, device, dtype, capacity: int = 16):
        self.data = torch.empty(batch, max(1, capacity), *rest, device=device, dtype=dtype)
        self.length = 0

    def append(self, x: torch.Tensor) -> None:
        n = x.shape[1]
        need = self.length + n
        if need > self.data.shape[1]:
            cap = self.data.shape[1]
            while cap < need:
                cap *= 2
            grown = torch.empty(self.data.shape[0], cap, *self.data.shape[2:], device=self.data.device,
                                dtype=self.data.dtype)
            grown[:, :self.length] = self.data[:, :self.length]
            self.data = grown
        self.data[:, self.length:need] = x.to(self.data.dtype)
        self.length = need

    def view(self) -> torch.Tensor:
        return self.data[:, :self.length]

    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()


class ChunkMemory:
    """Interface of the chunk memory: per complete chunk, a landmark and S keys/values.

    `resident` memories hold K/V on the compute device and the model reads them whole (keys_values); others
    (ramba/offload.py) are read through select() over the landmarks and gather() of the selected chunks.
    """

    num_chunks: int
    resident: bool = True

    def append(self, landmarks: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """landmarks [B, n, Hkv, dr]; k, v [B, n*S, Hkv, dh]."""
        raise NotImplementedError

    def landmarks(self) -> torch.Tensor:
        """[B, C, Hkv, dr], on the compute device."""
        raise NotImplementedError

    def keys_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v [B, C*S, Hkv, dh], on the compute device."""
        raise NotImplementedError

    def select(self, select_fn, r, topk: int, chunk_size: int, q_offset: int):
        """select_fn (an ops.select_chunks) over this memory's landmarks -> (indices, scores)."""
        return select_fn(r, self.landmarks(), topk, chunk_size, q_offset)

    def gather(self, indices: torch.Tensor):
        """indices [B, T, Hkv, K] -> (k_sel, v_sel [B, n*S, Hkv, dh], local [B, T, Hkv, K]): the n distinct
        valid chunks the slots name (ascending id) and the slots' ids into that set (-1 = invalid)."""
        k, v = self.keys_values()
        B, _, H, d = k.shape
        S = self.chunk_size
        C = self.num_chunks
        valid = (indices >= 0) & (indices < C)
        uniq = torch.unique(indices[valid])                                        # [n] sorted
        local = torch.searchsorted(uniq, torch.where(valid, indices, 0))
        local = torch.where(valid, local, torch.full_like(local, -1))
        k_sel = k.view(B, C, S, H, d).index_select(1, uniq).reshape(B, -1, H, d)   # [B, n*S, H, d]
        v_sel = v.view(B, C, S, H, d).index_select(1, uniq).reshape(B, -1, H, d)
        return k_sel, v_sel, local

    def flush(self) -> None:
        """Wait for pending writes (offload tiers)."""

    def close(self) -> None:
        """Release storage (offload tiers: files, pinned blocks)."""

    def nbytes(self) -> int:
        raise NotImplementedError

    def device_nbytes(self) -> int:
        return self.nbytes()

    def host_nbytes(self) -> int:
        return 0

    def disk_nbytes(self) -> int:
        return 0


class DeviceChunkMemory(ChunkMemory):
    """Everything in the compute device's memory, in preallocated growable buffers."""

    def __init__(self, batch: int, kv_heads: int, head_dim: int, dr: int, chunk_size: int, device, dtype,
                 capacity_chunks: int | None = None):
        # capacity_chunks (from a known prompt length) presizes the buffers: no doubling copy at the end
        cap = max(16, int(capacity_chunks or 16))
        self.chunk_size = chunk_size
        self.dtype = dtype
        self._lmk = GrowableBuffer(batch, (kv_heads, dr), device, dtype, capacity=cap)
        self._k = GrowableBuffer(batch, (kv_heads, head_dim), device, dtype, capacity=cap * chunk_size)
        self._v = GrowableBuffer(batch, (kv_heads, head_dim), device, dtype, capacity=cap * chunk_size)

    @property
    def num_chunks(self) -> int:
        return self._lmk.length

    def append(self, landmarks, k, v) -> None:
        self._lmk.append(landmarks)
        self._k.append(k)
        self._v.append(v)

    def landmarks(self):
        return self._lmk.view()

    def keys_values(self):
        return self._k.view(), self._v.view()

    def nbytes(self) -> int:
        return self._lmk.nbytes() + self._k.nbytes() + self._v.nbytes()


@dataclass
class RambaState:
    batch_size: int
    layers: list                      # one dict per mixer block, lower then upper (see each mixer)
    memory: ChunkMemory | None = None  # None for archs without HSA
    chunk_buffer: torch.Tensor | None = None   # [B, S, d] lower-stack outputs of the incomplete chunk
    buffer_len: int = 0
    pos: int = 0                      # absolute tokens consumed so far
    reset_phase: int = 0              # Mamba resets at positions p >= 1 with p % mamba_segment == reset_phase
    meta: dict = field(default_factory=dict)

    def nbytes(self) -> int:
        total = 0
        for layer in self.layers:
            for v in layer.values():
                if isinstance(v, torch.Tensor):
                    total += v.numel() * v.element_size()
                elif isinstance(v, GrowableBuffer):
                    total += v.nbytes()
        if self.chunk_buffer is not None:
            total += self.chunk_buffer.numel() * self.chunk_buffer.element_size()
        if self.memory is not None:
            total += self.memory.nbytes()
        return total
