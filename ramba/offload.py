"""Chunk-memory tiers behind the ChunkMemory interface (ramba/state.py): `host` and `disk` (hsa-spec decision 6).

The landmarks stay on the compute device (selection scans them every step; they are S x smaller than K/V),
or stream from host RAM past a size the caller sets. Chunk K/V live in a store:
* HostStore: host RAM in blocks allocated as the memory grows (a presized one: ahead, in background threads);
  nothing is ever copied to grow, and a chunk's K and V for every batch row are one contiguous record. Two modes
  on CUDA (RAMBA_HOST_PINNED): pageable blocks written by one background thread (the default), or pinned blocks
  written by async copies on a side stream (=1); allocating either costs about 1 s/GiB on one thread.
* DiskStore: the same records in a memory-mapped file plus a host-RAM LRU cache of hot chunks. The file is
  unlinked as soon as it is mapped (unless kept on request), so no run, however it ends, leaves one behind.

The model never asks an offloaded memory for its whole K/V: it selects from the landmarks, then `gather`s the
chunks the segment's queries selected, deduplicated, in one bulk transfer shared by every HSA layer, and runs
the same HSA op on them with indices local to the gathered set. On CPU this is bit-identical to the device
path (tested); on CUDA the writes go out on a side stream while the next segment computes.
"""
from __future__ import annotations

import bisect
import math
import os
import queue
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

import torch

# CACHE_BYTES: the disk tier's host-RAM cache of hot chunks; HEADROOM_CHUNKS: presized memories leave room
# for ~1K decoded tokens past the prompt before growing
from ramba import budget as _budget
from ramba.budget import CACHE_BYTES, HEADROOM_CHUNKS, PLACEMENTS
from ramba.errors import BadInputError
from ramba.kernels.hsa.reference import topk_newest
from ramba.state import ChunkMemory, DeviceChunkMemory, GrowableBuffer

BLOCK_BYTES = 256 << 20        # host block size cap: pinned allocation costs ~0.6 s/GiB, so grow in steps
FIRST_BLOCK_BYTES = 1 << 20    # first block; later ones double up to BLOCK_BYTES (small runs stay small)
LANDMARK_BLOCK_CHUNKS = 1 << 16  # streamed landmarks: chunks scored per device transfer
# pageable host mode: bytes of records queued for the writer thread before write() waits (on CUDA they are
# device tensors kept alive until copied, so this bounds the GPU memory the copies hold; ramba.budget counts it)
WRITE_AHEAD_BYTES = _budget.WRITE_AHEAD_BYTES
PAGE_BYTES = 4096              # allocate-ahead touches one byte per page to map pageable blocks
POPULATE_THREADS = max(1, min(8, (os.cpu_count() or 2) // 2))


def _pin_default() -> bool:
    return torch.cuda.is_available()


def _nbytes(shape, dtype) -> int:
    return math.prod(shape) * torch.empty((), dtype=dtype).element_size()


def _copy_spans(spans, recs: torch.Tensor) -> None:
    # inference mode is per thread: blocks made under the caller's torch.inference_mode() are inference
    # tensors, which the writer thread may update only inside inference mode (normal blocks are fine in it too)
    with torch.inference_mode():
        for blk, off, src, take in spans:
            blk[off:off + take].copy_(recs[src:src + take])


class _CopyWriter:
    """One daemon thread that copies queued records into host blocks, in order (HostStore's pageable mode).

    submit() returns at once unless more than WRITE_AHEAD_BYTES are queued; wait() returns once every queued
    copy has finished. An exception in the thread is kept and raised in the caller by the next submit/wait/
    check (later copies are dropped: the store is incomplete). The thread holds no reference to the store,
    so a store dropped without close() is still freed (its finalizer stops the thread).
    """

    def __init__(self):
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._cv = threading.Condition()
        self._items = 0                    # queued copies not finished
        self._bytes = 0                    # their bytes
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="ramba-host-writer", daemon=True)
        self._thread.start()

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, spans: list, recs: torch.Tensor, event, nbytes: int) -> None:
        """Copy recs [n, *rec] into spans [(block, offset, source offset, count)] once event (CUDA: recorded on
        the caller's stream after recs were made; None on CPU) has passed."""
        self.check()
        limit = WRITE_AHEAD_BYTES
        with self._cv:
            # one write larger than the limit still goes (alone), so every write makes progress
            self._cv.wait_for(lambda: self._bytes == 0 or self._bytes + nbytes <= limit or self._error is not None)
            self.check()
            self._items += 1
            self._bytes += nbytes
        self._q.put((spans, recs, event, nbytes))

    def wait(self) -> None:
        with self._cv:
            self._cv.wait_for(lambda: self._items == 0)
        self.check()

    def stop(self) -> None:
        """End the thread after the queued copies (no join: also called by a finalizer)."""
        self._q.put(None)

    def close(self) -> None:
        self.stop()
        self._thread.join()

    def _loop(self) -> None:
        streams = {}                       # device -> this thread's side stream
        while True:
            item = self._q.get()
            if item is None:
                return
            spans, recs, event, nbytes = item
            item = None
            try:
                if self._error is None:    # after a failure the rest are dropped: the caller gets the error
                    if event is None:
                        _copy_spans(spans, recs)
                    else:
                        # a pageable D2H is host-synchronous: on this thread's own stream it blocks only this
                        # thread (torch releases the GIL), not the caller's compute stream
                        stream = streams.get(recs.device)
                        if stream is None:
                            stream = streams[recs.device] = torch.cuda.Stream(recs.device)
                        stream.wait_event(event)                   # recs are complete
                        with torch.cuda.stream(stream):
                            _copy_spans(spans, recs)
            except BaseException as e:     # noqa: BLE001 - kept for the caller, never lost
                self._error = e
            finally:
                # the copy is done (or failed): drop recs so the allocator may reuse its memory
                spans = recs = event = None
                with self._cv:
                    self._items -= 1
                    self._bytes -= nbytes
                    self._cv.notify_all()


class HostStore:
    """Fixed-shape records (one per chunk) in host RAM, in blocks that double up to `block_bytes`.

    write(c0, recs [n, *rec]) from any device; read(ids [n] int64 CPU, sorted) -> [n, *rec] host tensor.
    Both wait for earlier writes where needed (read, sync and close wait for every write). How a write copies:
    * CUDA records, pinned blocks (pin=True; HostStore's own default when CUDA is up, which the streamed
      landmarks use: make_chunk_memory asks for pageable K/V blocks unless RAMBA_HOST_PINNED=1): an async copy
      on a side stream.
    * CUDA records, pageable blocks (pin=False, "pageable mode"): the caller records a CUDA event and queues the
      records for one writer thread, which copies them on its own stream after the event (see _CopyWriter).
    * CPU records: a plain copy in the caller (or in the writer thread with writer_thread=True: for tests).
    The caller must not change recs after write() (the copy may still be running until sync()).
    """

    def __init__(self, rec_shape: tuple, dtype, pin: bool | None = None, block_bytes: int = BLOCK_BYTES,
                 first_block_bytes: int = FIRST_BLOCK_BYTES, allocate_ahead: int = 0,
                 writer_thread: bool | None = None):
        """allocate_ahead: records to allocate in background threads, in the same blocks _grow would make, so
        that mapping pages (pageable blocks, a thread pool) or pinning them (one thread), each about 1 s/GiB on an
        H200 host, overlaps the prefill instead of stalling it (make_chunk_memory does so for presized memories).
        writer_thread: None -> CUDA records into pageable blocks go through the writer thread; True -> every
        write does, from any device (so CPU tests exercise the thread); False -> never (copies in the caller)."""
        self.rec_shape, self.dtype = tuple(rec_shape), dtype
        self.pin = _pin_default() if pin is None else bool(pin)
        self.writer_thread = writer_thread
        self._writer: _CopyWriter | None = None    # started on the first threaded write
        self.rec_bytes = _nbytes(rec_shape, dtype)
        self.max_block = max(1, block_bytes // self.rec_bytes)
        self.next_block = max(1, min(self.max_block, first_block_bytes // self.rec_bytes))
        self.blocks: list[torch.Tensor] = []
        self.starts: list[int] = []        # first record id of each block
        self.capacity = 0
        self.length = 0
        self._stream = None
        self._pending = None               # CUDA event of the last async write
        self.bytes_written = 0
        self._ahead: list[torch.Tensor] = []   # blocks the background thread has allocated, in _grow's order
        self._ahead_cv = threading.Condition()
        self._ahead_thread = None
        self._ahead_cancel = threading.Event()     # close(): stop allocating ahead
        self._ahead_error: BaseException | None = None
        if allocate_ahead > 0:
            sizes, total, n = [], 0, self.next_block
            while total < allocate_ahead:
                sizes.append(n)
                total += n
                n = min(self.max_block, n * 2)
            self._ahead_thread = threading.Thread(target=self._allocate_blocks, args=(sizes,), daemon=True)
            self._ahead_thread.start()

    def _new_block(self, n: int) -> torch.Tensor:
        return torch.empty((n, *self.rec_shape), dtype=self.dtype, pin_memory=self.pin)

    def _populated_block(self, n: int) -> torch.Tensor:
        """A new block whose pages are already mapped: pageable memory is mapped on first touch (about 1 s/GiB
        on one thread, like pinning), so the allocate-ahead threads touch one byte per page in parallel."""
        blk = self._new_block(n)
        if not self.pin:
            blk.view(-1).view(torch.uint8)[::PAGE_BYTES].zero_()
        return blk

    def _allocate_blocks(self, sizes: list[int]) -> None:
        """Background thread: allocate `sizes` blocks with `workers` daemon threads and hand them over in order.
        Always ends with the end marker (None), also after a failed allocation (kept in _ahead_error and raised
        by the write that needed the block) or a cancel (close())."""
        # pinned blocks: one thread (cudaHostAlloc serialises on a driver lock); pageable: POPULATE_THREADS
        workers = 1 if self.pin else POPULATE_THREADS
        slots: list = [None] * len(sizes)
        done = [threading.Event() for _ in sizes]
        order = iter(range(len(sizes)))
        lock = threading.Lock()

        def work():
            while not self._ahead_cancel.is_set():
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                try:
                    slots[i] = self._populated_block(sizes[i])
                except BaseException as e:     # noqa: BLE001 - handed to the caller, never lost
                    slots[i] = e
                finally:
                    done[i].set()

        for _ in range(workers):
            threading.Thread(target=work, name="ramba-host-alloc", daemon=True).start()
        try:
            for i in range(len(sizes)):
                while not done[i].wait(0.05):
                    if self._ahead_cancel.is_set():
                        return
                blk, slots[i] = slots[i], None
                if isinstance(blk, BaseException):
                    raise blk
                with self._ahead_cv:
                    self._ahead.append(blk)
                    self._ahead_cv.notify_all()
        except BaseException as e:             # noqa: BLE001
            self._ahead_error = e
            self._ahead_cancel.set()           # the other workers stop after their current block
        finally:
            with self._ahead_cv:
                self._ahead.append(None)       # end marker: later blocks are allocated inline
                self._ahead_cv.notify_all()

    def _next_block(self, n: int) -> torch.Tensor:
        """The next block of n records: the background thread's (waiting for it) while it has any, else new; a
        failed background allocation is raised here, in the write that needed the block."""
        if self._ahead_thread is not None:
            with self._ahead_cv:
                self._ahead_cv.wait_for(lambda: bool(self._ahead))
                blk = self._ahead.pop(0)
            if blk is not None:
                assert blk.shape[0] == n, "allocate-ahead blocks follow _grow's sizes"
                return blk
            self._ahead_thread = None
            if self._ahead_error is not None:
                err, self._ahead_error = self._ahead_error, None
                raise err
        return self._new_block(n)

    def _grow(self, need: int) -> None:
        while self.capacity < need:
            n = self.next_block
            self.next_block = min(self.max_block, n * 2)
            blk = self._next_block(n)
            self.starts.append(self.capacity)
            self.blocks.append(blk)
            self.capacity += n

    def _spans(self, c0: int, n: int):
        """(block, offset in block, offset in the source, count) covering records c0 .. c0 + n - 1."""
        i = bisect.bisect_right(self.starts, c0) - 1
        done = 0
        while done < n:
            off = c0 + done - self.starts[i]
            take = min(n - done, self.blocks[i].shape[0] - off)
            yield self.blocks[i], off, done, take
            done += take
            i += 1

    def _threaded(self, recs: torch.Tensor) -> bool:
        if self.writer_thread is None:
            return recs.is_cuda and not self.pin
        return self.writer_thread

    def write(self, c0: int, recs: torch.Tensor) -> None:
        if self._writer is not None:
            self._writer.check()                    # a failed earlier copy: the store is incomplete
        n = recs.shape[0]
        self._grow(c0 + n)                          # in the caller: the layout never depends on thread timing
        if self._threaded(recs):
            if n:
                event = None
                if recs.is_cuda:
                    event = torch.cuda.Event()
                    event.record(torch.cuda.current_stream(recs.device))
                if self._writer is None:
                    self._writer = _CopyWriter()
                    self._writer_finalizer = weakref.finalize(self, self._writer.stop)   # dropped unclosed
                # spans are computed here (the thread never reads blocks/starts, which later _grow calls extend);
                # the queue holds recs until its copy is done, so the allocator cannot reuse its memory early
                self._writer.submit(list(self._spans(c0, n)), recs, event, n * self.rec_bytes)
        elif recs.is_cuda and self.pin:
            if self._stream is None:
                self._stream = torch.cuda.Stream(recs.device)
            self._stream.wait_stream(torch.cuda.current_stream(recs.device))   # recs are complete
            with torch.cuda.stream(self._stream):
                for blk, off, src, take in self._spans(c0, n):
                    blk[off:off + take].copy_(recs[src:src + take], non_blocking=True)
                self._pending = torch.cuda.Event()
                self._pending.record(self._stream)
            recs.record_stream(self._stream)        # the allocator keeps recs alive until the copy is done
        else:
            for blk, off, src, take in self._spans(c0, n):
                blk[off:off + take].copy_(recs[src:src + take])
        self.length = max(self.length, c0 + n)
        self.bytes_written += n * self.rec_bytes

    def sync(self) -> None:
        """Wait for every write; raises the writer thread's exception, if one failed."""
        if self._pending is not None:
            self._pending.synchronize()
            self._pending = None
        if self._writer is not None:
            self._writer.wait()

    def read(self, ids: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        self.sync()
        n = ids.shape[0]
        out = torch.empty((n, *self.rec_shape), dtype=self.dtype) if out is None else out[:n]
        if n == 0:
            return out
        # ids are sorted: one index_select per block they touch
        blk_of = torch.searchsorted(torch.tensor(self.starts, dtype=torch.int64), ids, right=True) - 1
        bounds = torch.searchsorted(blk_of, torch.arange(len(self.blocks) + 1, dtype=torch.int64)).tolist()
        for b in range(len(self.blocks)):
            lo, hi = bounds[b], bounds[b + 1]
            if hi > lo:
                torch.index_select(self.blocks[b], 0, ids[lo:hi] - self.starts[b], out=out[lo:hi])
        return out

    def nbytes(self) -> int:
        return self.capacity * self.rec_bytes

    def close(self) -> None:
        """Free the blocks and stop the threads; a writer thread's exception is raised after the cleanup."""
        try:
            self.sync()
        finally:
            if self._writer is not None:
                self._writer_finalizer.detach()
                self._writer.close()
                self._writer = None
            if self._ahead_thread is not None:
                self._ahead_cancel.set()           # blocks not yet allocated are not: close() does not wait
                self._ahead_thread.join()
                self._ahead_thread = None
            self.blocks, self.starts, self.capacity, self._ahead = [], [], 0, []


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class DiskStore:
    """The same records in a memory-mapped file under `folder`, with a host-RAM LRU cache of hot records.

    The file grows by doubling (ftruncate + remap: the kernel keeps the pages, nothing is copied). It is
    unlinked right after it is opened unless keep=True, so an interrupted or killed run leaves no file; with
    keep=True it stays until close(keep=True). Writes go through a background thread (the caller's tensor is
    copied to host first), and a read waits for the writes before it.
    """

    def __init__(self, rec_shape: tuple, dtype, folder, capacity: int = 0, cache_bytes: int = CACHE_BYTES,
                 keep: bool = False, name: str = "chunks"):
        self.rec_shape, self.dtype = tuple(rec_shape), dtype
        self.rec_bytes = _nbytes(rec_shape, dtype)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = str(folder / f"{name}-{os.getpid()}-{id(self):x}.bin")
        self.keep = bool(keep)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        if not self.keep:
            os.unlink(self.path)                  # the mapping outlives the name: nothing left behind
        else:
            self._finalizer = weakref.finalize(self, _unlink_quietly, self.path)
            self._finalizer.detach()              # kept on request: close() decides
        self.capacity = 0
        self.length = 0
        self._map = None                          # torch uint8 view of the mapping [capacity, rec_bytes]
        self._grow(max(1, capacity))
        self.cache_slots = max(0, cache_bytes // self.rec_bytes)
        self._cache = torch.empty((self.cache_slots, *self.rec_shape), dtype=dtype) if self.cache_slots else None
        self._slot: OrderedDict[int, int] = OrderedDict()     # record id -> cache slot, LRU order
        self._free = list(range(self.cache_slots - 1, -1, -1))
        self._thread = None
        self.hits = self.misses = 0
        self.bytes_written = 0

    def _grow(self, need: int) -> None:
        if need <= self.capacity:
            return
        cap = max(need, 2 * self.capacity)
        os.ftruncate(self._fd, cap * self.rec_bytes)
        import mmap
        mm = mmap.mmap(self._fd, cap * self.rec_bytes)
        self._mmap = mm
        self._map = torch.frombuffer(mm, dtype=torch.uint8).view(cap, self.rec_bytes)
        self.capacity = cap

    def _typed(self, lo: int, hi: int) -> torch.Tensor:
        return self._map[lo:hi].view(self.dtype).view(hi - lo, *self.rec_shape)

    def write(self, c0: int, recs: torch.Tensor) -> None:
        self.wait()
        n = recs.shape[0]
        self._grow(c0 + n)
        # the host copy is taken now (on CUDA: a D2H to pinned memory), the file write runs in the background
        host = recs.to("cpu", non_blocking=recs.is_cuda) if recs.device.type != "cpu" else recs.clone()
        event = None
        if recs.is_cuda:
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(recs.device))

        def job():
            if event is not None:
                event.synchronize()
            self._typed(c0, c0 + n).copy_(host)

        self._thread = threading.Thread(target=job, daemon=True)
        self._thread.start()
        self.length = max(self.length, c0 + n)
        self.bytes_written += n * self.rec_bytes

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    sync = wait

    def read(self, ids: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        self.wait()
        n = ids.shape[0]
        out = torch.empty((n, *self.rec_shape), dtype=self.dtype) if out is None else out[:n]
        if n == 0:
            return out
        mm = self._typed(0, self.capacity)
        if n > self.cache_slots:                  # more than the cache holds: straight from the file
            torch.index_select(mm, 0, ids, out=out)
            self.misses += n
            return out
        id_list = ids.tolist()
        slots, miss_pos, miss_ids = [], [], []
        for j, c in enumerate(id_list):
            s = self._slot.get(c)
            if s is None:
                miss_pos.append(j)
                miss_ids.append(c)
                slots.append(-1)
            else:
                self._slot.move_to_end(c)
                slots.append(s)
        self.hits += n - len(miss_ids)
        self.misses += len(miss_ids)
        if miss_ids:
            hot = set(c for c, s in zip(id_list, slots) if s >= 0)
            fresh = []
            for c in miss_ids:
                if not self._free:                # evict the least recently used chunk not needed now
                    for old in self._slot:
                        if old not in hot:
                            break
                    self._free.append(self._slot.pop(old))
                s = self._free.pop()
                self._slot[c] = s
                hot.add(c)                        # needed by this read: not evictable by its later misses
                fresh.append(s)
            fresh_t = torch.tensor(fresh, dtype=torch.int64)
            self._cache[fresh_t] = torch.index_select(mm, 0, torch.tensor(miss_ids, dtype=torch.int64))
            for j, s in zip(miss_pos, fresh):
                slots[j] = s
        torch.index_select(self._cache, 0, torch.tensor(slots, dtype=torch.int64), out=out)
        return out

    def nbytes(self) -> int:
        """Host bytes held (the cache); the file's size is file_bytes()."""
        return 0 if self._cache is None else self._cache.numel() * self._cache.element_size()

    def file_bytes(self) -> int:
        return self.capacity * self.rec_bytes

    def close(self, keep: bool | None = None) -> None:
        self.wait()
        if self._map is None:
            return
        self._map = None
        try:
            self._mmap.close()
        except BufferError:       # a view is still alive somewhere: the GC unmaps it later
            pass
        os.close(self._fd)
        if self.keep and not (self.keep if keep is None else keep):
            _unlink_quietly(self.path)
        self._cache = None


class OffloadedChunkMemory(ChunkMemory):
    """Landmarks on the compute device (or streamed from host past `landmarks_max_bytes`); K/V records
    [B, 2, S, Hkv, dh] in a HostStore or DiskStore. Same results as DeviceChunkMemory."""

    resident = False

    def __init__(self, batch: int, kv_heads: int, head_dim: int, dr: int, chunk_size: int, device, dtype,
                 store, landmarks_max_bytes: int | None = None):
        self.batch, self.kv_heads, self.head_dim, self.dr = batch, kv_heads, head_dim, dr
        self.chunk_size = chunk_size
        self.device = torch.device(device)
        self.dtype = dtype
        self.store = store
        self.landmarks_max_bytes = landmarks_max_bytes
        self._lmk = GrowableBuffer(batch, (kv_heads, dr), device, dtype)
        self._lmk_host: HostStore | None = None      # records [B, Hkv, dr] once streamed
        self._staging = None                         # pinned buffer for bulk H2D gathers
        self._staging_free = None                    # CUDA event: the last H2D from staging has finished
        self.gathered_chunks = 0                     # chunks moved host -> device (transfer accounting)
        self.gathers = 0

    @property
    def num_chunks(self) -> int:
        return self.store.length

    # ------------------------------------------------------------------ writes
    def append(self, landmarks, k, v) -> None:
        """landmarks [B, n, Hkv, dr]; k, v [B, n*S, Hkv, dh] on the compute device."""
        B, n = landmarks.shape[:2]
        if n == 0:
            return
        c0 = self.store.length
        S, H, d = self.chunk_size, self.kv_heads, self.head_dim
        kv = torch.stack([k.reshape(B, n, S, H, d), v.reshape(B, n, S, H, d)], dim=2)    # [B, n, 2, S, H, d]
        self.store.write(c0, kv.to(self.dtype).transpose(0, 1).contiguous())           # [n, B, 2, S, H, d]
        self._append_landmarks(c0, landmarks.to(self.dtype))

    def _append_landmarks(self, c0: int, lmk: torch.Tensor) -> None:
        if self._lmk_host is None and self.landmarks_max_bytes is not None:
            after = (self._lmk.length + lmk.shape[1]) * self.batch * self.kv_heads * self.dr * lmk.element_size()
            if after > self.landmarks_max_bytes:     # past the user's size: move them to host and stream
                self._lmk_host = HostStore((self.batch, self.kv_heads, self.dr), self.dtype)
                if self._lmk.length:
                    self._lmk_host.write(0, self._lmk.view().transpose(0, 1).contiguous())
                self._lmk = None
        if self._lmk_host is not None:
            self._lmk_host.write(c0, lmk.transpose(0, 1).contiguous())                 # [n, B, Hkv, dr]
        else:
            self._lmk.append(lmk)

    # ------------------------------------------------------------------ reads
    def landmarks(self) -> torch.Tensor:
        if self._lmk_host is None:
            return self._lmk.view()
        ids = torch.arange(self._lmk_host.length, dtype=torch.int64)
        return self._lmk_host.read(ids).transpose(0, 1).to(self.device)                # [B, C, Hkv, dr]

    @property
    def landmarks_streamed(self) -> bool:
        return self._lmk_host is not None

    def select(self, select_fn, r, topk: int, chunk_size: int, q_offset: int):
        """select_fn(r, landmarks, ...) over every landmark; streamed landmarks go block by block with a
        running top-k (the K largest (score, id) pairs of the union are the K largest overall)."""
        if self._lmk_host is None:
            return select_fn(r, self._lmk.view(), topk, chunk_size, q_offset)
        C = self._lmk_host.length
        c_stop = min(C, (q_offset + r.shape[1] - 1) // chunk_size)      # no later chunk is visible
        best_i = best_s = None
        for c0 in range(0, max(c_stop, 1), LANDMARK_BLOCK_CHUNKS):
            c1 = min(c_stop, c0 + LANDMARK_BLOCK_CHUNKS)
            ids = torch.arange(c0, max(c1, c0), dtype=torch.int64)
            lm = self._lmk_host.read(ids).transpose(0, 1).to(self.device)             # [B, c, Hkv, dr]
            # relative positions: a query sees local chunk j iff pos - c0*S >= (j + 1)*S
            i, s = select_fn(r, lm, topk, chunk_size, q_offset - c0 * chunk_size)
            i = torch.where(i >= 0, i + c0, i)
            if best_i is None:
                best_i, best_s = i, s
                continue
            cand_i, cand_s = torch.cat([best_i, i], -1), torch.cat([best_s, s], -1)
            order = cand_i.argsort(dim=-1)                                # ids ascending: ties go to the newer
            cand_i, cand_s = cand_i.gather(-1, order), cand_s.gather(-1, order)
            pick = topk_newest(cand_s, topk).clamp(min=0)
            best_i, best_s = cand_i.gather(-1, pick), cand_s.gather(-1, pick)
            best_i = torch.where(torch.isfinite(best_s), best_i, torch.full_like(best_i, -1))
            order = best_i.argsort(dim=-1, descending=True)               # recency order
            best_i, best_s = best_i.gather(-1, order), best_s.gather(-1, order)
        return best_i, best_s

    def gather(self, indices: torch.Tensor):
        """indices [B, T, Hkv, K] chunk ids -> k_sel, v_sel [B, n*S, Hkv, dh] on the compute device (the n
        distinct valid chunks, ascending) and local [B, T, Hkv, K] ids into them (-1 = invalid slot)."""
        C = self.num_chunks
        B, S, H, d = self.batch, self.chunk_size, self.kv_heads, self.head_dim
        valid = (indices >= 0) & (indices < C)
        uniq = torch.unique(indices[valid])                                           # [n] sorted
        local = torch.searchsorted(uniq, torch.where(valid, indices, 0))
        local = torch.where(valid, local, torch.full_like(local, -1))
        n = uniq.shape[0]
        recs = self._fetch(uniq.cpu())                                                # [n, B, 2, S, H, d]
        kv = recs.transpose(0, 1)                                                     # [B, n, 2, S, H, d]
        k = kv[:, :, 0].reshape(B, n * S, H, d)
        v = kv[:, :, 1].reshape(B, n * S, H, d)
        self.gathers += 1
        self.gathered_chunks += n
        return k, v, local

    def _fetch(self, ids: torch.Tensor) -> torch.Tensor:
        """Records of the sorted ids on the compute device: one host gather into a pinned staging buffer,
        then one bulk H2D copy (CUDA), or a fresh host tensor (CPU)."""
        if self.device.type != "cuda":
            return self.store.read(ids).to(self.device)
        n = ids.shape[0]
        if self._staging_free is not None:
            self._staging_free.synchronize()            # the previous H2D from the staging buffer is done
        if self._staging is None or self._staging.shape[0] < n:
            cap = max(n, 64, 0 if self._staging is None else 2 * self._staging.shape[0])
            self._staging = torch.empty((cap, *self.store.rec_shape), dtype=self.dtype, pin_memory=True)
        host = self.store.read(ids, out=self._staging)
        dev = host.to(self.device, non_blocking=True)
        self._staging_free = torch.cuda.Event()
        self._staging_free.record(torch.cuda.current_stream(self.device))
        return dev

    def keys_values(self):
        """The whole K/V on the compute device: O(memory); for tests and diagnostics only."""
        C = self.num_chunks
        B, S, H, d = self.batch, self.chunk_size, self.kv_heads, self.head_dim
        kv = self.store.read(torch.arange(C, dtype=torch.int64)).to(self.device).transpose(0, 1)
        return kv[:, :, 0].reshape(B, C * S, H, d), kv[:, :, 1].reshape(B, C * S, H, d)

    def flush(self) -> None:
        self.store.sync()

    # ------------------------------------------------------------------ accounting
    def device_nbytes(self) -> int:
        return 0 if self._lmk is None else self._lmk.nbytes()

    def host_nbytes(self) -> int:
        host = self.store.nbytes() + (0 if self._lmk_host is None else self._lmk_host.nbytes())
        if self._staging is not None:
            host += self._staging.numel() * self._staging.element_size()
        return host

    def disk_nbytes(self) -> int:
        return self.store.file_bytes() if isinstance(self.store, DiskStore) else 0

    def nbytes(self) -> int:
        return self.device_nbytes() + self.host_nbytes() + self.disk_nbytes()

    def close(self) -> None:
        try:
            self.store.close()
        finally:                                   # the landmarks go too when the store raises its writer's error
            if self._lmk_host is not None:
                self._lmk_host.close()


def _host_pin_from_env() -> bool | None:
    """RAMBA_HOST_PINNED: unset or "0" -> pageable blocks, mapped ahead by a thread pool and written by the writer
    thread (the default: the fastest first 64M sample measured on an H200, 38.4 s against 40.7 s pinned; records
    benchmarks/records/offload-h200-s5/), "1" -> pinned blocks when CUDA is up (None: HostStore's default)."""
    raw = os.environ.get("RAMBA_HOST_PINNED", "").strip()
    if raw not in ("", "0", "1"):
        raise BadInputError(f"RAMBA_HOST_PINNED={raw!r} must be 0 (pageable host blocks) or 1 (pinned)")
    return None if raw == "1" else False


def host_block_mode() -> str:
    """What the host placement's K/V blocks are under the current environment: "pinned" or "pageable"."""
    pin = _host_pin_from_env()
    return "pageable" if pin is False or not _pin_default() else "pinned"


def make_chunk_memory(placement: str, batch: int, cfg, device, dtype, capacity_tokens: int | None = None,
                      memory_dir=None, keep_file: bool = False, cache_bytes: int = CACHE_BYTES,
                      landmarks_max_bytes: int | None = None, block_bytes: int = BLOCK_BYTES,
                      first_block_bytes: int = FIRST_BLOCK_BYTES, writer_thread: bool | None = None) -> ChunkMemory:
    """The chunk memory of a model config in one placement: "gpu" (the compute device, DeviceChunkMemory),
    "host" or "disk". capacity_tokens (the prompt's length, when known) presizes the buffers. host: the
    blocks are pinned or pageable per RAMBA_HOST_PINNED; writer_thread goes to HostStore (True: tests)."""
    Hkv, dh, S = cfg.hsa_kv_heads, cfg.hsa_head_dim, cfg.chunk_size
    dr = cfg.retrieval_dim // Hkv
    if placement == "gpu":
        return DeviceChunkMemory(batch, Hkv, dh, dr, S, device, dtype,
                                 capacity_chunks=(capacity_tokens // S + HEADROOM_CHUNKS) if capacity_tokens else None)
    rec = (batch, 2, S, Hkv, dh)
    if placement == "host":
        # a presized memory allocates (and maps) its blocks ahead, off the prefill's critical path
        ahead = (capacity_tokens // S + HEADROOM_CHUNKS) if capacity_tokens else 0
        store = HostStore(rec, dtype, pin=_host_pin_from_env(), block_bytes=block_bytes,
                          first_block_bytes=first_block_bytes, allocate_ahead=ahead, writer_thread=writer_thread)
    elif placement == "disk":
        if memory_dir is None:
            import tempfile
            memory_dir = tempfile.gettempdir()
        cap = (capacity_tokens // S + HEADROOM_CHUNKS) if capacity_tokens else 0
        store = DiskStore(rec, dtype, memory_dir, capacity=cap, cache_bytes=cache_bytes, keep=keep_file)
    else:
        raise BadInputError(f"unknown memory placement {placement!r}; use one of {', '.join(PLACEMENTS)} or auto")
    return OffloadedChunkMemory(batch, Hkv, dh, dr, S, device, dtype, store, landmarks_max_bytes)
