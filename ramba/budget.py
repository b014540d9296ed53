"""Where the chunk memory goes: bytes each placement needs at a length, the free bytes of each tier, the
`auto` choice, and the one-line failure when nothing fits (raised before a run writes anything).

Pure Python at import (the dry-run path has no torch); CUDA is asked for its free memory only when the
device is a GPU. Needs are estimates from the config (the bench records measure the truth).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ramba.errors import BadInputError, DoesNotFitError

PLACEMENTS = ("gpu", "host", "disk")
CHOICES = ("auto",) + PLACEMENTS
DTYPES = {"float32": 4, "fp32": 4, "f32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "f16": 2}
CANONICAL = {"fp32": "float32", "f32": "float32", "bf16": "bfloat16", "fp16": "float16", "f16": "float16"}
HEADROOM_CHUNKS = 16          # as ramba.offload: presized memories leave room for ~1K decoded tokens
ACT_FLOATS_PER_TOKEN = 48     # activation estimate per d_model per token of a segment (tiny at 64K: ~3 GiB)
USABLE = 0.9                  # of each tier's free bytes (fragmentation, other processes)
CACHE_BYTES = 1 << 30         # disk tier host cache (ramba.offload.CACHE_BYTES)
WRITE_AHEAD_BYTES = 256 << 20  # host tier: records queued for its writer thread (ramba.offload.WRITE_AHEAD_BYTES)


def canonical_dtype(name: str | None) -> str | None:
    """'bf16' -> 'bfloat16' (None stays None); unknown names raise BadInputError."""
    if name is None:
        return None
    n = str(name).lower().replace("torch.", "")
    if n not in DTYPES:
        raise BadInputError(f"unknown dtype {name!r}; use float32, bfloat16 (bf16) or float16 (fp16)")
    return CANONICAL.get(n, n)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _get(cfg, key):
    return cfg[key] if isinstance(cfg, dict) else getattr(cfg, key)


def chunk_memory_bytes(cfg, length: int, batch: int = 1, itemsize: int = 4) -> tuple[int, int]:
    """(K/V bytes, landmark bytes) of the chunk memory after `length` tokens (+ decode headroom)."""
    S = _get(cfg, "chunk_size")
    chunks = length // S + HEADROOM_CHUNKS
    kv = chunks * batch * 2 * S * _get(cfg, "hsa_kv_heads") * _get(cfg, "hsa_head_dim") * itemsize
    lmk = chunks * batch * _get(cfg, "retrieval_dim") * itemsize
    return int(kv), int(lmk)


@dataclass
class Need:
    placement: str
    device: int     # bytes on the compute device beyond what is allocated now (memory + activations)
    host: int
    disk: int


def needs(cfg, length: int, placement: str, itemsize: int = 4, batch: int = 1, segment: int = 1 << 16,
          act_itemsize: int = 4, landmarks_max_bytes: int | None = None, cache_bytes: int = CACHE_BYTES,
          device_is_host: bool = False) -> Need:
    kv, lmk = chunk_memory_bytes(cfg, length, batch, itemsize)
    act = int(batch * min(segment, max(length, 1)) * _get(cfg, "d_model") * act_itemsize * ACT_FLOATS_PER_TOKEN)
    lmk_dev = lmk if landmarks_max_bytes is None or lmk <= landmarks_max_bytes else 0
    lmk_host = lmk - lmk_dev
    if placement == "gpu":
        n = Need("gpu", kv + lmk + act, 0, 0)
    elif placement == "host":
        # + the records queued for the host writer thread (device tensors until copied; ramba.offload)
        n = Need("host", lmk_dev + act + min(kv, WRITE_AHEAD_BYTES), kv + lmk_host, 0)
    elif placement == "disk":
        n = Need("disk", lmk_dev + act, min(cache_bytes, kv) + lmk_host, kv)
    else:
        raise BadInputError(f"unknown memory placement {placement!r}; use {', '.join(CHOICES)}")
    if device_is_host:             # CPU compute: the "device" is host RAM too
        n = Need(n.placement, 0, n.host + n.device, n.disk)
    return n


def host_free() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def disk_free(folder) -> int:
    p = Path(folder if folder is not None else "/tmp").expanduser().resolve()
    while not p.exists():             # the folder is created later: ask its nearest existing parent
        p = p.parent
    return shutil.disk_usage(p).free


def gpu_free(device: str) -> int:
    import torch
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    # memory torch already reserved but does not use is free to this process too
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def free_bytes(device: str, memory_dir=None) -> dict:
    host = host_free()
    on_gpu = str(device).startswith("cuda")
    # "gpu" is the compute device's own memory: on a CPU run that is host RAM, and the messages say so
    return {"gpu": gpu_free(device) if on_gpu else host, "host": host, "disk": disk_free(memory_dir),
            "label": "GPU" if on_gpu else "device (CPU RAM)"}


def fits(need: Need, free: dict) -> bool:
    return (need.device <= USABLE * free["gpu"] and need.host <= USABLE * free["host"]
            and need.disk <= USABLE * free["disk"])


def choose(cfg, length: int, requested: str, free: dict, **kw) -> tuple[str, Need, str]:
    """The placement for `length` tokens: `requested`, or with "auto" the first of gpu, host, disk that fits.
    Returns (placement, its need, one line saying what and why); raises DoesNotFitError (one line: what it
    needs, what is free) when the request fits no tier."""
    if requested not in CHOICES:
        raise BadInputError(f"unknown memory placement {requested!r}; use {', '.join(CHOICES)}")
    order = PLACEMENTS if requested == "auto" else (requested,)
    all_needs = {p: needs(cfg, length, p, **kw) for p in PLACEMENTS}
    itemsize = kw.get("itemsize", 4)
    kv, lmk = chunk_memory_bytes(cfg, length, kw.get("batch", 1), itemsize)
    dev = free.get("label", "GPU")
    free_s = f"free: {dev} {human(free['gpu'])}, host {human(free['host'])}, disk {human(free['disk'])}"
    what = f"chunk memory at {length:,} tokens = K/V {human(kv)} + landmarks {human(lmk)} ({itemsize} B/value)"
    for p in order:
        if fits(all_needs[p], free):
            return p, all_needs[p], f"memory: {p}{' (auto)' if requested == 'auto' else ''}: {what}; {free_s}"
    wanted = "; ".join(f"{p} needs {dev} {human(n.device)}, host {human(n.host)}, disk {human(n.disk)}"
                       for p, n in all_needs.items() if p in order)
    raise DoesNotFitError(f"{what} fits no {'tier' if requested == 'auto' else requested + ' placement'}: "
                          f"{wanted}; {free_s}; try --memory-dtype bfloat16, a shorter length, "
                          f"{'--memory auto, ' if requested != 'auto' else ''}or --memory-dir on a larger disk")
