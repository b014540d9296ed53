"""`--dry-run`: what a run would do (samples, tokens, memory, disk) without running it.

Pure Python plus json: no torch, no transformers, so `ramba-eval passkey --length 64M --dry-run` answers in well
under the 5 s budget. Memory figures are estimates from the model's config.json; they say so when unknown.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ramba.evals.backends import parse_model_spec
from ramba.evals.config import RunConfig
from ramba.evals.identity import resolve_path
from ramba.evals.defaults import TINY_HF_CONFIG, TINY_HF_WEIGHT_BYTES, tiny_hf_dir
from ramba.evals.lengths import format_length

RECORD_BYTES = 1200        # one JSONL row (measured ~0.8-1.1 KB with short answers), two rows per sample
REPORT_BYTES = 1 << 20     # report.html + report.md + plots/*.png (measured ~0.4 MB)
PROMPT_BYTES_PER_TOKEN = 4  # prompts are cached as int32 .npy
MEMORY_MAX_TOKENS = 1 << 16  # == ramba.tasks.cache.MEMORY_MAX_TOKENS: shorter prompts live in memory, never on disk


def disk_needs(cfg: RunConfig) -> tuple[int, int]:
    """(bytes in the results folder, bytes of prompt cache) at most: records + report, and every prompt longer
    than MEMORY_MAX_TOKENS cached as int32 (less when some are already cached)."""
    cells = len(cfg.depths) * cfg.samples
    n = len(cfg.lengths) * cells
    cached = sum(L for L in cfg.lengths if L > MEMORY_MAX_TOKENS) * cells
    return 2 * n * RECORD_BYTES + REPORT_BYTES, cached * PROMPT_BYTES_PER_TOKEN


@dataclass
class Plan:
    samples: int
    prompt_tokens: int                   # sum of prompt lengths over all samples
    max_length: int
    disk_bytes: int                      # prompt cache (upper bound) + records
    weights_bytes: int | None
    state_bytes_at_max: int | None       # backend state/cache after the longest prompt
    notes: list[str] = field(default_factory=list)

    @property
    def memory_bytes(self) -> int | None:
        if self.weights_bytes is None or self.state_bytes_at_max is None:
            return None
        return self.weights_bytes + self.state_bytes_at_max


def _human(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _weights_bytes(model_dir: Path) -> int | None:
    files = list(model_dir.glob("*.safetensors")) or list(model_dir.glob("*.bin"))
    return sum(f.stat().st_size for f in files) if files else None


def _hf_state(cfg_json: dict, length: int, bytes_per: int) -> int | None:
    """KV cache: 2 (K and V) x layers x kv heads x head dim x bytes, per token."""
    try:
        layers = cfg_json["num_hidden_layers"]
        heads = cfg_json["num_attention_heads"]
        kv = cfg_json.get("num_key_value_heads") or heads
        hd = cfg_json.get("head_dim") or cfg_json["hidden_size"] // heads
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return 2 * layers * kv * hd * bytes_per * length


def _ramba_state(c: dict, length: int, bytes_per: int) -> int | None:
    """Chunk memory, the part of RAMba's state that grows with length: K and V (kv heads x head dim) per token
    plus one landmark (retrieval_dim) per chunk. Growable buffers may hold up to 2x this (capacity doubling);
    the fixed-size Mamba2 states are left out."""
    c = c.get("config", c)
    try:
        if c.get("arch", "ramba") not in ("ramba", "swa-hsa"):
            return None
        per_token = 2 * c["hsa_kv_heads"] * c["hsa_head_dim"] + c["retrieval_dim"] / c["chunk_size"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return int(per_token * bytes_per * length)


def _ramba_preset(name: str) -> dict | None:
    try:
        from ramba.config import RambaConfig
        return RambaConfig.from_preset(name).to_dict()
    except Exception:  # not a preset: the run itself will say what is wrong with the spec
        return None


def estimate(cfg: RunConfig) -> Plan:
    backend, model_id = parse_model_spec(cfg.model)
    if model_id and backend in ("hf", "ramba"):
        model_id = resolve_path(model_id)
    cells = len(cfg.depths) * cfg.samples
    n = len(cfg.lengths) * cells
    tokens = sum(cfg.lengths) * cells
    max_len = max(cfg.lengths)
    plan = Plan(samples=n, prompt_tokens=tokens, max_length=max_len, disk_bytes=sum(disk_needs(cfg)),
                weights_bytes=None, state_bytes_at_max=None)
    bytes_per = 4 if cfg.device == "cpu" else 2  # hf: fp32 on CPU, the checkpoint's (usually 16-bit) dtype on GPU
    if backend == "dummy":
        plan.weights_bytes, plan.state_bytes_at_max = 0, 16
    elif backend == "oracle":
        plan.weights_bytes, plan.state_bytes_at_max = 0, 4 * (max_len + 64)
    elif model_id and Path(model_id).is_dir():
        d = Path(model_id)
        plan.weights_bytes = _weights_bytes(d)
        try:
            cj = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            cj = {}
        if backend == "hf":
            plan.state_bytes_at_max = _hf_state(cj, max_len, bytes_per)
        elif backend == "ramba":
            plan.state_bytes_at_max = _ramba_state(cj, max_len, 4)
            plan.notes.append("ramba state = chunk memory (K/V + landmarks) in fp32, the dtype the backend loads; "
                              "buffers may reserve up to 2x")
        else:
            plan.notes.append(f"{backend} state size is not estimated here; it is measured per sample (state_bytes)")
    elif backend == "hf" and model_id and Path(model_id) == tiny_hf_dir():
        plan.weights_bytes = TINY_HF_WEIGHT_BYTES
        plan.state_bytes_at_max = _hf_state(TINY_HF_CONFIG, max_len, bytes_per)
        plan.notes.append("the default tiny hf model is built on first use")
    elif backend == "ramba" and model_id and _ramba_preset(model_id) is not None:
        plan.state_bytes_at_max = _ramba_state(_ramba_preset(model_id), max_len, 4)
        plan.notes.append(f"preset {model_id!r} is random init; its weights are not estimated here")
    else:
        plan.notes.append(f"model {model_id!r} is not a local folder; memory is measured per sample when run")
    seg = f"{cfg.segment} tokens" if cfg.segment else "the backend's segment size"
    plan.notes.append(f"prompts are fed {seg} per call; disk counts records, the report, and every prompt over "
                      f"{MEMORY_MAX_TOKENS // 1024}K tokens cached as int32")
    return plan


def format_plan(cfg: RunConfig, plan: Plan) -> str:
    lens = ",".join(format_length(x) for x in cfg.lengths)
    tok = cfg.tokenizer or "(the model's own)"
    lines = [
        f"plan for run {cfg.run_id}",
        f"  task       {cfg.task}",
        f"  model      {cfg.model}   device {cfg.device}   tokenizer {tok}",
        f"  lengths    {lens}",
        f"  depths     {','.join(f'{d:g}' for d in cfg.depths)}",
        f"  samples    {plan.samples}  ({len(cfg.lengths)} lengths x {len(cfg.depths)} depths x {cfg.samples})",
        f"  tokens     {plan.prompt_tokens:,} prompt tokens in total (longest {plan.max_length:,})",
        f"  memory     ~{_human(plan.memory_bytes)}  (weights {_human(plan.weights_bytes)} + state at the longest "
        f"prompt {_human(plan.state_bytes_at_max)})",
        f"  disk       <= {_human(plan.disk_bytes)}  (prompt cache + records)",
        f"  output     {cfg.out_dir()}",
    ]
    lines += [f"  note       {n}" for n in plan.notes]
    return "\n".join(lines)
