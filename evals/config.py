"""RunConfig: one frozen, typed description of an evaluation run; its hash names the run.

Loaded from the CLI's options or from a YAML/TOML file (`ramba-eval run CONFIG`). Only fields that change the
results enter the hash (`out` and `report` do not), so a rerun with the same settings resumes the same folder.
Model and tokenizer paths are stored canonically (`ramba.evals.identity`): one checkpoint, one run id.
A file that leaves out `model`, `lengths`, `depths` or `samples` gets the same defaults as `ramba-eval passkey`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ramba.errors import BadInputError
from ramba.evals.devices import check_device_spec
from ramba.evals.identity import canonical_model_spec, canonical_path
from ramba.evals.lengths import parse_depths, parse_lengths

# Fields that do not change what is measured, so they stay out of the run hash. Where the chunk memory lives
# does not change the outputs (tested identical), so a run may resume on another placement.
_NOT_HASHED = ("out", "report", "memory", "memory_dir", "keep_memory")
# Fields added later enter the hash only when set, so the run ids of older configs do not change.
_HASHED_IF_SET = {"dtype": None, "memory_dtype": None, "gen_tokens": "answer"}
GEN_TOKENS = ("answer", "task")


@dataclass(frozen=True)
class RunConfig:
    task: str = "passkey"
    lengths: tuple[int, ...] = (1024, 2048, 4096)
    depths: tuple[float, ...] = (0.0, 0.5, 1.0)
    samples: int = 2                  # samples per (length, depth) cell
    seed: int = 0
    model: str = "dummy"              # BACKEND[:ID], e.g. "hf:/path", "ramba:tiny", "oracle"
    tokenizer: str | None = None      # None = the backend's own ("byte" for project models, dummy, oracle)
    device: str = "auto"              # "auto" = cuda when available, else cpu
    segment: int | None = None        # prompt tokens per consume() call; None = the backend's preference
    trust_remote_code: bool = False
    out: str | None = None            # results folder; None = ./results/<run_id>
    report: bool = True               # write the report when the run finishes
    # ramba backend (issue 10); other backends ignore them (hf takes dtype)
    dtype: str | None = None          # model compute dtype: float32 | bfloat16 | float16; None = checkpoint's
    memory: str = "auto"              # chunk memory placement: auto | gpu | host | disk
    memory_dtype: str | None = None   # chunk memory dtype (bf16 halves it); None = dtype
    memory_dir: str | None = None     # disk placement folder; None = <out>/memory
    keep_memory: bool = False         # keep the disk placement's file at the end
    # generated convention: decode len(answer) tokens ("answer"), or the task's own budget ("task": RULER's
    # tokens_to_generate, 128 for NIAH, scored by substring as upstream, so a preamble before the value is no miss)
    gen_tokens: str = "answer"

    def __post_init__(self):
        # Normalise and validate once, so every constructor path (CLI, file, tests) gets the same checks.
        object.__setattr__(self, "lengths", parse_lengths(self.lengths))
        object.__setattr__(self, "depths", parse_depths(self.depths))
        if not isinstance(self.samples, int) or isinstance(self.samples, bool) or self.samples < 1:
            raise BadInputError(f"samples must be a positive integer, got {self.samples!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise BadInputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.segment is not None and (not isinstance(self.segment, int) or isinstance(self.segment, bool)
                                         or self.segment < 1):
            raise BadInputError(f"segment must be a positive token count, got {self.segment!r}")
        if not isinstance(self.task, str) or not self.task:
            raise BadInputError("task must be a task name; list them with `ramba-eval tasks`")
        if not isinstance(self.model, str) or not self.model:
            raise BadInputError("model must be BACKEND[:ID]; list them with `ramba-eval models`")
        for name in ("trust_remote_code", "report"):
            v = getattr(self, name)
            if not isinstance(v, bool):  # YAML `report: "no"` is the string "no", which Python would read as true
                raise BadInputError(f"{name} must be true or false, got {v!r}; write {name}: true or {name}: false "
                                    "without quotes")
        for name in ("tokenizer", "out"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise BadInputError(f"{name} must be a non-empty string (a path), got {v!r}")
        object.__setattr__(self, "device", check_device_spec(self.device))
        object.__setattr__(self, "model", canonical_model_spec(self.model.strip()))
        if self.tokenizer is not None and self.tokenizer != "byte":
            object.__setattr__(self, "tokenizer", canonical_path(self.tokenizer))
        from ramba.budget import CHOICES, canonical_dtype
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        object.__setattr__(self, "memory_dtype", canonical_dtype(self.memory_dtype))
        if self.gen_tokens not in GEN_TOKENS:
            raise BadInputError(f"gen_tokens must be one of {', '.join(GEN_TOKENS)}, got {self.gen_tokens!r}")
        if self.memory not in CHOICES:
            raise BadInputError(f"memory must be one of {', '.join(CHOICES)}, got {self.memory!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lengths"] = list(self.lengths)
        d["depths"] = list(self.depths)
        return d

    def hashed_dict(self) -> dict:
        d = self.to_dict()
        for k in _NOT_HASHED:
            d.pop(k)
        for k, default in _HASHED_IF_SET.items():
            if d[k] == default:
                d.pop(k)
        return d

    def backend_options(self) -> dict:
        """Options threaded to the backend (the ramba backend uses all; others ignore what they do not know)."""
        mem_dir = self.memory_dir or str(self.out_dir() / "memory")
        return dict(dtype=self.dtype, memory=self.memory, memory_dtype=self.memory_dtype, memory_dir=mem_dir,
                    keep_memory=self.keep_memory)

    def config_hash(self) -> str:
        blob = json.dumps(self.hashed_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        """<task>-<backend>[-<model folder or preset>]-<config hash>, e.g. passkey-ramba-ramba-tiny-3f2a..."""
        backend, _, ident = self.model.partition(":")
        tag = backend
        if ident:
            tag += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", ident.rstrip("/").split("/")[-1])
        return f"{self.task}-{tag}-{self.config_hash()}"

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("results") / self.run_id

    def replace(self, **kw) -> "RunConfig":
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BadInputError(f"unknown run config key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        return cls(**d)


def load_run_config(path: str | Path) -> RunConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) run config; keys are RunConfig's fields."""
    p = Path(path)
    data = read_config_file(p)
    if "runs" in data:
        raise BadInputError(f"{str(p)!r} is a suite (it has `runs:`); run it with `ramba-eval run {p}`")
    return config_from_file_data(data, p)


def with_passkey_defaults(data: dict) -> dict:
    """The keys a file may leave out get what `ramba-eval passkey` uses, not RunConfig's bare defaults
    (a file without `model:` once ran the random `dummy` backend without a word)."""
    from ramba.evals import defaults
    out = dict(data)
    out.setdefault("model", defaults.default_model())
    out.setdefault("lengths", defaults.DEFAULT_LENGTHS)
    out.setdefault("depths", defaults.DEFAULT_DEPTHS)
    out.setdefault("samples", defaults.DEFAULT_SAMPLES)
    return out


def config_from_file_data(data: dict, path: Path) -> RunConfig:
    """A run config read from `path`. The `config.yaml` inside a results folder has no `out`: it resumes the
    folder it sits in, wherever that folder was moved or copied to."""
    data = with_passkey_defaults(data)
    if "out" not in data and (path.parent / "meta.json").is_file():
        data["out"] = str(path.parent)
    return RunConfig.from_dict(data)


def read_config_file(p: Path) -> dict:
    """Parse a .yaml/.yml/.toml file into a mapping (one-line errors)."""
    if not p.is_file():
        raise BadInputError(f"run config {str(p)!r} does not exist; pass a .yaml or .toml file")
    text = p.read_text()
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            raise BadInputError(f"run config {str(p)!r} must end in .yaml, .yml or .toml")
    except BadInputError:
        raise
    except Exception as e:  # parser errors carry line numbers; keep them on one line
        raise BadInputError(f"cannot parse run config {str(p)!r}: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise BadInputError(f"run config {str(p)!r} must be a mapping of keys to values")
    return data
