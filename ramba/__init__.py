"""RAMba: Mamba2 + Hierarchical Sparse Attention, and the baselines built from the same parts.

The public names load lazily, so `import ramba.tasks` or the CLI's dry run never pays for importing torch.
"""
from importlib import import_module

_EXPORTS = {"PRESETS": "ramba.config", "RambaConfig": "ramba.config",
            "RambaModel": "ramba.model", "RambaState": "ramba.state"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ramba' has no attribute {name!r}")
