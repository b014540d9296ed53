"""TrainConfig: a typed, frozen view of a training YAML/JSON file (configs/*.yaml).

Example (configs/ramba-tiny.yaml):
    name: ramba-tiny
    seed: 0
    model: {preset: tiny, overrides: {mamba_segment: 256, fusion: softmax}}
    data: {mix: {passkey: 0.4, mqar: 0.3, niah: 0.2, vt: 0.1}, answer_weight: 8}
    curriculum: [{until: 0.25, length: 512, batch: 64}, {until: 1.0, length: 4096, batch: 8}]
    optim: {lr: 2.0e-3, warmup_steps: 100, min_lr_ratio: 0.1}
    train: {max_steps: 3000, time_budget_s: 540, dtype: bf16}
Progress p in [0, 1] is max(step / max_steps, elapsed / time_budget_s): the learning-rate schedule and the
curriculum are functions of p, so a wall-clock-budgeted run still anneals and reaches its last stage.
A stage's `side: {length, batch, mix, weight}` adds a second batch (other rows) to each of its optimizer steps
(configs/ramba-tiny-p8-mix4k.yaml).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ramba.errors import BadInputError


def _take(d: dict, cls, where: str):
    """Build dataclass `cls` from dict `d`, refusing unknown keys with a one-line error."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise BadInputError(f"{where} must be a mapping, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise BadInputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in d]
    if missing:
        raise BadInputError(f"{where}: missing key(s) {', '.join(missing)}")
    return cls(**d)


@dataclass(frozen=True)
class ModelSpec:
    preset: str = "tiny"
    overrides: dict = field(default_factory=dict)    # RambaConfig fields (arch, mamba_segment, fusion, ...)
    init_from: str | None = None   # a checkpoint folder whose weights start the run (a recipe's second part)
    trainable: tuple = ()          # regexes (re.search on parameter names): train only those; () = all


@dataclass(frozen=True)
class DataSpec:
    mix: dict = field(default_factory=lambda: {"passkey": 1.0})
    kind_args: dict = field(default_factory=dict)    # per row kind keyword arguments (data.py)
    local_text: tuple = ()                           # files/folders of .txt/.md for filler and `text` rows
    exclude_fillers: tuple = ()                      # filler pools held out of training (e.g. task_zipf)
    random_reset_phase: bool = False                 # a random Mamba reset phase per step (length-robust resets)
    answer_weight: float = 8.0                       # answer-token CE weight relative to the all-token CE
    lm_weight: float = 1.0                           # weight of the all-token CE
    retrieval_weight: float = 0.0                    # weight of -log(fusion weight on the answer's source chunk)
    retrieval_positions: str = "all"                 # where it counts: every copied byte, or "first" of each copy
    selection_weight: float = 0.0                    # weight of CE(source chunk | scores of every visible chunk)
    selection_negatives: int = 0                     # > 0: the selection term also ranks against the batch's other
                                                     # rows and this many chunks of earlier batches (a queue)
    selection_negative_kinds: tuple = ("ruler_niah", "ruler_vt")   # rows whose targets get those negatives


@dataclass(frozen=True)
class SideRows:
    """Rows of another length (and mix) whose gradient joins every step of a stage: long and short rows side by
    side, where a sequential curriculum lets the later stage wash out what the earlier one taught."""
    length: int
    batch: int
    mix: dict | None = None       # default: the stage's mix, else data.mix
    weight: float = 1.0           # this batch's loss weight beside the main batch's 1


@dataclass(frozen=True)
class Stage:
    until: float          # progress fraction at which this stage ends
    length: int           # row length in tokens (multiple of the chunk size)
    batch: int
    mix: dict | None = None       # this stage's task mix (default: data.mix)
    segment: int | None = None    # this stage's Mamba reset spacing (default: the model's mamba_segment)
    random_phase: bool | None = None   # this stage's random reset phase (default: data.random_reset_phase)
    side: SideRows | None = None     # a second batch of other rows in every step of this stage (one optimizer step)


@dataclass(frozen=True)
class OptimSpec:
    lr: float = 2e-3
    betas: tuple = (0.9, 0.95)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainSpec:
    max_steps: int = 1000
    time_budget_s: float | None = None   # stop (and anneal) by wall clock too
    dtype: str = "bf16"                  # autocast dtype on CUDA; CPU always runs fp32
    device: str = "auto"
    log_every: int = 20
    eval_every: int = 200                # diagnostics: HSA-off accuracy, passkey at the eval length
    eval_length: int = 4096
    eval_rows: int = 16
    ckpt_every: int = 500
    compile: bool = False


@dataclass(frozen=True)
class TrainConfig:
    name: str
    seed: int
    model: ModelSpec
    data: DataSpec
    curriculum: tuple
    optim: OptimSpec
    train: TrainSpec
    source: str = ""                     # the file it was read from

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def stage(self, progress: float) -> Stage:
        for s in self.curriculum:
            if progress < s.until:
                return s
        return self.curriculum[-1]


def load_config(path: str | Path) -> TrainConfig:
    return config_from_dict(read_config_dict(path), source=str(path))


def read_config_dict(path: str | Path) -> dict:
    """The config file as a mapping, its `base:` chain merged in (before any command-line overrides)."""
    return _read_with_base(Path(path), ())


def _read_raw(path: Path) -> dict:
    if not path.is_file():
        raise BadInputError(f"training config {path} not found: pass a file such as configs/ramba-tiny.yaml")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            raw = json.loads(text)
        else:
            import yaml
            raw = yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001 - any parse error becomes one line
        raise BadInputError(f"training config {path} does not parse: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise BadInputError(f"training config {path} must be a mapping at the top level")
    return raw


def _read_with_base(path: Path, seen: tuple) -> dict:
    """A config with `base: OTHER.yaml` (relative to its own folder) is OTHER merged with its own keys: mappings
    merge key by key, anything else (lists, scalars, null) replaces. So a baseline's recipe can be the shipped
    model's recipe with another architecture, written once."""
    raw = _read_raw(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    target = (path.parent / str(base)).resolve()
    if target in seen or len(seen) > 8:
        raise BadInputError(f"training config {path}: base {base!r} loops back ({' -> '.join(map(str, seen))})")
    return _merge(_read_with_base(target, seen + (path.resolve(),)), raw)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _stage(raw, i: int) -> Stage:
    stage = _take(raw, Stage, f"curriculum[{i}]")
    if stage.side is None:
        return stage
    return dataclasses.replace(stage, side=_take(stage.side, SideRows, f"curriculum[{i}].side"))


def _patterns(value, where: str) -> tuple:
    import re
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise BadInputError(f"{where} must be a list of regular expressions over parameter names, got {value!r}")
    for v in value:
        try:
            re.compile(str(v))
        except re.error as e:
            raise BadInputError(f"{where}: {v!r} is not a regular expression ({e})") from None
    return tuple(str(v) for v in value)


def config_from_dict(raw: dict, source: str = "") -> TrainConfig:
    if not isinstance(raw, dict):
        raise BadInputError("training config must be a mapping at the top level")
    top = {"name", "seed", "model", "data", "curriculum", "optim", "train"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise BadInputError(f"training config: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(top))}")
    stages = raw.get("curriculum") or [{"until": 1.0, "length": 512, "batch": 8}]
    if not isinstance(stages, (list, tuple)):
        raise BadInputError("curriculum must be a list of {until, length, batch}")
    stages = tuple(_stage(s, i) for i, s in enumerate(stages))
    prev = 0.0
    for i, s in enumerate(stages):
        if not (prev < s.until <= 1.0) or s.length <= 0 or s.batch <= 0:
            raise BadInputError(f"curriculum[{i}]: need increasing 0 < until <= 1 and positive length/batch, got {s}")
        if s.side is not None and (s.side.length <= 0 or s.side.batch <= 0 or s.side.weight <= 0):
            raise BadInputError(f"curriculum[{i}].side: need positive length, batch and weight, got {s.side}")
        prev = s.until
    data = dict(raw.get("data") or {})
    for key in ("local_text", "exclude_fillers", "selection_negative_kinds"):
        if key in data:
            data[key] = tuple(data[key] or ())
    model = raw.get("model")
    if isinstance(model, dict) and "trainable" in model:
        model = {**model, "trainable": _patterns(model["trainable"], "model.trainable")}
    optim = dict(raw.get("optim") or {})
    if "betas" in optim:
        optim["betas"] = tuple(optim["betas"])
    cfg = TrainConfig(
        name=str(raw.get("name", "run")), seed=int(raw.get("seed", 0)),
        model=_take(model, ModelSpec, "model"), data=_take(data, DataSpec, "data"),
        curriculum=stages, optim=_take(optim, OptimSpec, "optim"), train=_take(raw.get("train"), TrainSpec, "train"),
        source=source)
    for key in ("answer_weight", "lm_weight", "retrieval_weight", "selection_weight"):
        w = getattr(cfg.data, key)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise BadInputError(f"data.{key} must be a number >= 0, got {w!r}")
    n = cfg.data.selection_negatives
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise BadInputError(f"data.selection_negatives must be an integer >= 0 (queued chunks), got {n!r}")
    if n and not cfg.data.selection_weight:
        raise BadInputError("data.selection_negatives needs data.selection_weight > 0 (they are the selection "
                            "term's negatives)")
    from ramba.train.data import ROW_KINDS   # here: the config module stays free of torch at import
    unknown = sorted(set(cfg.data.selection_negative_kinds) - set(ROW_KINDS))
    if unknown:
        raise BadInputError(f"data.selection_negative_kinds: unknown row kind(s) {', '.join(unknown)}; "
                            f"use {', '.join(sorted(ROW_KINDS))}")
    if cfg.data.retrieval_positions not in ("all", "first"):
        raise BadInputError(f"data.retrieval_positions must be 'all' or 'first', got {cfg.data.retrieval_positions!r}")
    if cfg.train.max_steps <= 0:
        raise BadInputError(f"train.max_steps must be positive, got {cfg.train.max_steps}")
    if cfg.train.dtype not in ("bf16", "fp16", "fp32"):
        raise BadInputError(f"train.dtype must be bf16, fp16 or fp32, got {cfg.train.dtype!r}")
    return cfg
