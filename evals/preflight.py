"""Checks shared by `--dry-run` and the start of a run, with no model loaded and (except for an explicit CUDA or
MPS device) no torch imported: the task and model exist, the tokenizer can be found, the device exists, the
output and cache folders are writable and have room, and the longest prompt fits the model's positions.

The run repeats the exact checks once the model and tokenizer are loaded (`runner.prepare`), but everything a
plan can know fails here first, so `--dry-run` says what the run would say.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ramba.errors import BadInputError, CheckpointError
from ramba.evals import checks
from ramba.evals.backends import parse_model_spec
from ramba.evals.config import RunConfig
from ramba.evals.identity import resolve_path
from ramba.evals.records import read_meta

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_OUT_FIX = "pick another --out"
_CACHE_FIX = "set RAMBA_EVAL_CACHE to a writable folder"
_ANSWER_MARGIN = 256  # answers are shorter than this (RULER's longest budget is 128 tokens)


@dataclass(frozen=True)
class Preflight:
    backend: str
    model_id: str | None       # resolved (absolute) path, or the preset / backend-specific ID
    out_dir: Path
    positions: int | None      # the model's position limit (hf config.json), None = unbounded or unknown


def check_out_dir(cfg: RunConfig) -> Path:
    """The folder must be new, empty, or hold a run of exactly this config (then we resume it)."""
    out = cfg.out_dir()
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output path {str(out)!r} is a file; pass a folder to --out")
    # The lock and another rank's writability probe (checks.check_writable) are no one's results.
    if out.is_dir() and any(f.name != ".lock" and not f.name.startswith(".ramba-eval-probe-") for f in out.iterdir()):
        meta = read_meta(out)
        if meta is None:
            raise BadInputError(f"output folder {str(out)!r} is not empty and holds no ramba-eval run; "
                                "pick another --out or empty it")
        if meta.get("config_hash") != cfg.config_hash():
            raise BadInputError(f"output folder {str(out)!r} holds a run with a different config "
                                f"({meta.get('config_hash')} != {cfg.config_hash()}); pick another --out, "
                                "delete that folder, or rerun with its config.yaml")
    checks.check_writable(out, "output folder", _OUT_FIX)
    return out


def _check_model(backend: str, model_id: str | None) -> None:
    from ramba.evals import defaults
    if backend == "hf":
        if not model_id:
            raise BadInputError("the hf backend needs a local model folder: --model hf:/path/to/dir")
        if Path(model_id) == defaults.tiny_hf_dir():
            return  # the embedded default: built on first use
        if not (Path(model_id) / "config.json").is_file():
            raise CheckpointError(f"{model_id!r} is not a local transformers model folder (no config.json); "
                                  "pass hf:/path/to/dir of a saved model (nothing is downloaded)")
    elif backend == "ramba":
        from ramba.config import PRESETS
        if not model_id:
            raise BadInputError("the ramba backend needs a checkpoint folder or preset: --model ramba:PATH_OR_PRESET")
        p = Path(model_id)
        if p.is_dir():
            if not (p / "config.json").is_file() or not any(p.glob("*.safetensors")):
                raise CheckpointError(f"{model_id!r} is not a RAMba checkpoint (needs config.json and "
                                      "model.safetensors); pass a checkpoint folder or a preset "
                                      f"({', '.join(PRESETS)})")
        elif model_id not in PRESETS:
            raise CheckpointError(f"{model_id!r} is neither a checkpoint folder nor a preset ({', '.join(PRESETS)})")


def _has_tokenizer_files(d: Path) -> bool:
    return any((d / f).exists() for f in _TOKENIZER_FILES)


def _check_tokenizer(cfg: RunConfig, backend: str, model_id: str | None) -> None:
    """Where the tokenizer will come from exists (loading it is the run's job: transformers is slow to import)."""
    if cfg.tokenizer and cfg.tokenizer != "byte":
        p = Path(resolve_path(cfg.tokenizer))
        if not p.exists():
            raise BadInputError(f"tokenizer path {cfg.tokenizer!r} does not exist: pass 'byte' or the path of a "
                                "local Hugging Face tokenizer directory (or its tokenizer.json)")
        if p.is_dir() and not (_has_tokenizer_files(p) or (p / "config.json").is_file()):
            raise BadInputError(f"tokenizer path {cfg.tokenizer!r} holds no tokenizer.json or tokenizer_config.json")
        return
    if not model_id or not Path(model_id).is_dir():
        return
    d = Path(model_id)
    try:
        vocab = json.loads((d / "config.json").read_text()).get("vocab_size")
    except (OSError, ValueError):
        vocab = None
    if cfg.tokenizer == "byte":
        if isinstance(vocab, int) and vocab < 256:
            raise BadInputError(f"the byte tokenizer has 256 ids but model {model_id!r} only {vocab}; pass the "
                                "model's own --tokenizer")
        return
    if backend == "hf" and not (_has_tokenizer_files(d) or (d / "ramba_eval.json").is_file()):
        raise BadInputError(f"model folder {model_id!r} has no tokenizer files; pass --tokenizer PATH or "
                            "--tokenizer byte")
    if backend == "ramba" and vocab not in (None, 256) and not _has_tokenizer_files(d):
        raise BadInputError(f"model {model_id!r} has a {vocab}-token vocabulary and no tokenizer files; "
                            "pass --tokenizer PATH to its tokenizer directory")


def _check_device(device: str) -> None:
    """An explicit accelerator must exist; `auto` and `cpu` always do (and need no torch import here)."""
    if device not in ("auto", "cpu"):
        from ramba.evals.devices import resolve_device
        resolve_device(device)


def _longest_need(cfg: RunConfig, model_id: str) -> int:
    """Positions the longest sample uses: prompt + answer tokens fed back (hf models only: positions are theirs)."""
    from ramba.evals.backend_hf import default_tokenizer_spec
    from ramba.tasks import get_task
    from ramba.tasks.tokenizers import load_tokenizer
    tok = load_tokenizer(resolve_path(cfg.tokenizer) if cfg.tokenizer else default_tokenizer_spec(Path(model_id)))
    longest = max(cfg.lengths)
    need = longest
    for s in get_task(cfg.task).generate([longest], list(cfg.depths), 1, cfg.seed, tok):
        need = max(need, s.length + len(s.answer_ids) - 1)
    return need


def preflight(cfg: RunConfig) -> Preflight:
    from ramba.evals import defaults
    from ramba.evals.plan import disk_needs
    from ramba.tasks import get_task
    from ramba.tasks.cache import cache_root
    get_task(cfg.task)
    backend, model_id = parse_model_spec(cfg.model)
    if model_id and backend in ("hf", "ramba"):
        model_id = resolve_path(model_id)
    _check_model(backend, model_id)
    _check_tokenizer(cfg, backend, model_id)
    _check_device(cfg.device)
    out = check_out_dir(cfg)
    records, prompts = disk_needs(cfg)
    if prompts:  # only long prompts are cached on disk
        checks.check_writable(Path(cache_root()), "prompt cache folder", _CACHE_FIX)
    if backend == "hf" and model_id and Path(model_id) == defaults.tiny_hf_dir() and not Path(model_id).exists():
        checks.check_writable(defaults.cache_dir(), "model cache folder", _CACHE_FIX)
    positions = checks.model_positions(backend, model_id)
    longest = max(cfg.lengths)
    checks.check_positions(cfg.model, positions, longest, longest)
    if positions is not None and longest + _ANSWER_MARGIN > positions:
        # Near the limit the answer's own tokens decide: build the longest sample (this loads the tokenizer).
        checks.check_positions(cfg.model, positions, _longest_need(cfg, model_id), longest)
    checks.check_free_disk([(out, records, "records"), (Path(cache_root()), prompts, "prompt cache")])
    return Preflight(backend, model_id, out, positions)
