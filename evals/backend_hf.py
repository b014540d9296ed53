"""`hf` backend: any local transformers causal LM directory, fed in segments through past_key_values.

Remote code runs only with an explicit trust_remote_code=True (`--trust-remote-code`); weights load from
safetensors when the folder has them. Nothing is downloaded: the folder must exist locally.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ramba.errors import BadInputError, CheckpointError
from ramba.evals.backends import LoglikelihoodMixin

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
HINT_FILE = "ramba_eval.json"  # optional {"tokenizer": "byte"} for folders without tokenizer files


def default_tokenizer_spec(model_dir: Path) -> str:
    """The model's own tokenizer: its folder when it ships one, else what ramba_eval.json names."""
    if any((model_dir / f).exists() for f in _TOKENIZER_FILES):
        return str(model_dir)
    hint = model_dir / HINT_FILE
    if hint.exists():
        spec = json.loads(hint.read_text()).get("tokenizer")
        if spec:
            return spec
    raise BadInputError(f"model folder {str(model_dir)!r} has no tokenizer files; pass --tokenizer PATH or --tokenizer byte")


def _tensor_bytes(obj, seen=None) -> int:
    """Bytes of every tensor reachable from a cache object (DynamicCache layers, legacy tuples, ...)."""
    import torch
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(o, seen) for o in obj)
    if isinstance(obj, dict):
        return sum(_tensor_bytes(o, seen) for o in obj.values())
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("transformers"):
        return sum(_tensor_bytes(o, seen) for o in vars(obj).values())
    return 0


class HFBackend(LoglikelihoodMixin):
    name = "hf"

    def __init__(self, model: str | None, device: str = "cpu", tokenizer=None, trust_remote_code: bool = False,
                 dtype: str | None = None, **_):
        if not model:
            raise BadInputError("the hf backend needs a local model folder: --model hf:/path/to/dir")
        path = Path(model).expanduser()
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{str(path)!r} is not a local transformers model folder (no config.json); "
                                  "pass hf:/path/to/dir of a saved model (nothing is downloaded)")
        import torch

        from ramba.hub_kernels import shield_hub_kernels
        shield_hub_kernels()
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()  # one rich bar is ours; loader bars would interleave with it

        self.model_id = str(path)
        self.device = device
        if tokenizer is None or isinstance(tokenizer, str):
            from ramba.tasks.tokenizers import load_tokenizer
            tokenizer = load_tokenizer(tokenizer or default_tokenizer_spec(path))
        self.tokenizer = tokenizer
        try:
            cfg = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, local_files_only=True)
        except ValueError as e:
            if "trust_remote_code" in str(e):
                raise BadInputError(f"{str(path)!r} needs its own code to load; rerun with --trust-remote-code "
                                    "if you trust that folder") from None
            raise CheckpointError(f"cannot read {str(path)!r}: {' '.join(str(e).split())[:300]}") from None
        has_st = any(path.glob("*.safetensors"))
        torch_dtype = getattr(torch, dtype) if dtype else torch.float32 if device == "cpu" else "auto"
        kw = dict(config=cfg, trust_remote_code=trust_remote_code, local_files_only=True,
                  use_safetensors=has_st or None)
        try:
            try:
                self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kw)
            except TypeError:  # transformers < 4.56 names it torch_dtype
                self.model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch_dtype, **kw)
        except OSError as e:
            raise CheckpointError(f"cannot load weights from {str(path)!r}: {' '.join(str(e).split())[:300]}") from None
        self.model.to(device).eval()
        self._keep_ok = True
        if self.tokenizer.vocab_size > self.model.config.vocab_size:
            raise BadInputError(f"tokenizer {self.tokenizer.name} has {self.tokenizer.vocab_size} ids but the model "
                                f"only {self.model.config.vocab_size}; pass the model's own --tokenizer")
        self.reset()

    def reset(self, prompt_length: int | None = None) -> None:
        self._cache = None

    def _forward(self, ids) -> "torch.Tensor":
        import torch
        x = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device)[None]  # [1, T']
        kw = {"logits_to_keep": 1} if self._keep_ok else {}  # only the last position's logits: O(V), not O(T'V)
        with torch.inference_mode():
            try:
                out = self.model(input_ids=x, past_key_values=self._cache, use_cache=True, **kw)
            except TypeError as e:
                if not kw or "logits_to_keep" not in str(e):
                    raise
                self._keep_ok = False  # remote-code models may not know the argument
                out = self.model(input_ids=x, past_key_values=self._cache, use_cache=True)
        self._cache = out.past_key_values
        return out.logits[0, -1].float()  # [V]

    def consume(self, ids: np.ndarray) -> "torch.Tensor":
        if len(ids) == 0:
            raise BadInputError("consume() needs at least one token")
        return self._forward(ids)

    def step(self, token: int) -> "torch.Tensor":
        return self._forward([token])

    def state_bytes(self) -> int:
        return _tensor_bytes(self._cache) if self._cache is not None else 0
