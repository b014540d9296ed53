"""Machine facts for meta.json and per-sample memory peaks. Nothing here imports torch at module import."""
from __future__ import annotations

import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

_PACKAGES = ("ramba-eval", "torch", "triton", "transformers", "numpy", "lm-eval", "typer", "matplotlib", "pandas")


def git_sha(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(device: str) -> dict:
    info = {"device": device, "python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine()}
    if device.startswith("cuda"):
        import torch
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def reset_peak_host() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False when unsupported (peak is then process-wide)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_host_bytes() -> int:
    """Peak resident set size since the last reset_peak_host() (VmHWM), else since process start."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_gpu(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.reset_peak_memory_stats(device)


def sync(device: str) -> None:
    """Wait for queued GPU work, so a timer read next measures it (no-op on CPU)."""
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize(device)


def peak_gpu_bytes(device: str) -> int:
    if device.startswith("cuda"):
        import torch
        return int(torch.cuda.max_memory_allocated(device))
    return 0
