"""RAMba: Mamba2 + Hierarchical Sparse Attention, and the baselines built from the same parts."""
from ramba.config import PRESETS, RambaConfig
from ramba.model import RambaModel
from ramba.state import RambaState

__all__ = ["PRESETS", "RambaConfig", "RambaModel", "RambaState"]
