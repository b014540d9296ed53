"""`ramba-eval train CONFIG`: train a model of the family from a config on synthetic long-context rows.

Out folder layout (default runs/<name>/):
  model/              config.json + model.safetensors (the checkpoint; returned by train())
  train_state.pt      optimizer, step, elapsed seconds, data RNG (resume)
  log.jsonl           one JSON line per log step ("train") and per evaluation ("eval")
  curves.png          training curves
  train_config.json   the resolved config, summary.json (steps, tokens, wall time, device, final evals)
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ramba.errors import BadInputError
from ramba.train.checkpoint import STATE_FILE, load_state, save_model_dir, save_state, write_json_atomic
from ramba.train.config import TrainConfig, load_config
from ramba.train.curves import plot_curves
from ramba.train.data import Batch, RowSampler
from ramba.train.metrics import LandmarkQueue, answer_accuracy, kind_stats, loss_and_stats, retrieval_stats
from ramba.train.schedule import lr_at

EVAL_SEED_OFFSET = 1_000_003     # held-out rows come from a seed stream training never draws from


def pick_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"train.device={spec} but no CUDA device is visible: use device: auto or cpu")
    return torch.device(spec)


def build_model(cfg: TrainConfig, device: torch.device):
    from ramba import RambaConfig, RambaModel
    mcfg = RambaConfig.from_preset(cfg.model.preset, **cfg.model.overrides)
    model = RambaModel(mcfg).to(device)
    if cfg.model.init_from:
        init_weights(model, Path(cfg.model.init_from), mcfg)
    freeze_except(model, cfg.model.trainable)
    return model, mcfg


def freeze_except(model: torch.nn.Module, patterns: tuple) -> None:
    """Train only the parameters whose names match one of `patterns` (all when empty): e.g. the retrieval path
    alone, so a fine-tune of chunk selection cannot change how the selected chunks are read."""
    if not patterns:
        return
    import re
    names = [n for n, _ in model.named_parameters()]
    for pat in patterns:
        if not any(re.search(pat, n) for n in names):
            raise BadInputError(f"model.trainable: {pat!r} matches no parameter (names look like "
                                f"{', '.join(names[:3])}, ...)")
    for n, p in model.named_parameters():
        p.requires_grad_(any(re.search(pat, n) for pat in patterns))


def init_weights(model, path: Path, mcfg) -> None:
    """Start from the weights of an earlier run (the first part of a two-part recipe); same architecture only."""
    from ramba.train.checkpoint import load_model_dir
    if not (path / "config.json").is_file():
        raise BadInputError(f"model.init_from {path} holds no checkpoint: train the recipe's first part first "
                            "(its config names it), or point init_from at a checkpoint folder")
    src = load_model_dir(path, device="cpu")
    diff = sorted(k for k, v in mcfg.to_dict().items() if src.cfg.to_dict().get(k) != v)
    if set(diff) - WEIGHT_FREE_KEYS:
        raise BadInputError(f"model.init_from {path} has another architecture (differs in {', '.join(diff)}; "
                            f"only {', '.join(sorted(WEIGHT_FREE_KEYS))} may change from the start's)")
    model.load_state_dict(src.state_dict())


# Config keys a fine-tune may change from its start's: they set how the same weights compute (a softmax sink
# constant, chunks per query, training-time selection noise), not which parameters exist.
WEIGHT_FREE_KEYS = frozenset({"sm_n", "topk", "select_noise"})


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on norms, biases, embeddings and scalar gates (1-D parameters)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "emb" in name else decay).append(p)
    o = cfg.optim
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kw = {"fused": True} if next(model.parameters()).is_cuda else {}
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), **kw)


def forward(model, ids: torch.Tensor, mcfg, hsa_enabled: bool = True, return_aux: bool = True,
            segment: int | None = None, reset_phase: int = 0):
    """Model forward with the training hooks; archs without HSA get neither hook."""
    seg = mcfg.mamba_segment if segment is None else segment
    if mcfg.has_hsa:
        out = model(ids, mamba_segment=seg, hsa_enabled=hsa_enabled, return_aux=return_aux, reset_phase=reset_phase)
        return out if return_aux else (out, None)
    kw = {"mamba_segment": seg, "reset_phase": reset_phase} if mcfg.uses_mamba else {}
    return model(ids, **kw), None


def autocast(device: torch.device, dtype: str):
    if device.type != "cuda" or dtype == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


@torch.no_grad()
def evaluate_rows(model, mcfg, batch: Batch, device, dtype: str, rows_per_pass: int = 8) -> dict:
    """Held-out answer accuracy with HSA on (plus retrieval diagnostics) and, for HSA archs, with HSA off."""
    was = model.training
    model.eval()
    out: dict[str, list] = {}
    for i in range(0, batch.ids.shape[0], rows_per_pass):
        sub = Batch(batch.ids[i:i + rows_per_pass], batch.targets[i:i + rows_per_pass],
                    batch.answer[i:i + rows_per_pass], batch.source[i:i + rows_per_pass], batch.kinds).to(device)
        n = sub.ids.shape[0]
        with autocast(device, dtype):
            logits, aux = forward(model, sub.ids, mcfg)
        acc = answer_accuracy(logits, sub)
        acc.update(retrieval_stats(sub, aux, mcfg.chunk_size))
        if mcfg.has_hsa:
            with autocast(device, dtype):
                logits_off, _ = forward(model, sub.ids, mcfg, hsa_enabled=False, return_aux=False)
            off = answer_accuracy(logits_off, sub)
            acc.update({f"{k}_hsa_off": v for k, v in off.items()})
        for k, v in acc.items():
            out.setdefault(k, []).append((v, n))
    model.train(was)
    return {f"eval_{k}": sum(v * n for v, n in vs) / sum(n for _, n in vs) for k, vs in out.items()}


class _Progress:
    """tqdm bar when available, else a line every log step."""

    def __init__(self, total: int, initial: int):
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, desc="train")
            except ImportError:  # pragma: no cover
                pass
        self.last_print = 0.0

    def update(self, n: int, stats: dict | None = None):
        if self.bar is None:   # logs/pipes: one short line at most every 15 s
            if stats and time.time() - self.last_print > 15:
                self.last_print = time.time()
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()
                               if k in ("step", "len", "loss", "lm_ce", "answer_ce", "digit_acc", "exact",
                                        "needle_in_topk", "needle_weight", "elapsed")), flush=True)
            return
        self.bar.update(n)
        if stats:
            self.bar.set_postfix({k: f"{stats[k]:.3g}" for k in ("loss", "answer_ce", "digit_acc", "len")
                                  if k in stats})

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train(config_path: str, out_dir: str | None = None, resume: bool = True) -> Path:
    """Train from `config_path`; returns the checkpoint folder (out/model). Resumes from out/train_state.pt."""
    cfg = load_config(config_path)
    out = Path(out_dir) if out_dir else Path("runs") / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    return train_config(cfg, out, resume)


def train_config(cfg: TrainConfig, out: Path, resume: bool = True, stop_after: int | None = None,
                 stop_at: float | None = None) -> Path:
    """train() for an already loaded TrainConfig (tests, scripts). stop_after: leave after that many steps of
    this call with a checkpoint written (a pre-empted run; resume continues it exactly); stop_at: the same at a
    wall-clock time (time.time()), for a run split over several calls of a time-limited machine."""
    out = Path(out)
    device = pick_device(cfg.train.device)
    torch.manual_seed(cfg.seed)
    model, mcfg = build_model(cfg, device)
    for s in cfg.curriculum:
        for length in (s.length, s.side.length if s.side else 0):
            if length % mcfg.chunk_size:
                raise BadInputError(f"curriculum length {length} is not a multiple of chunk_size {mcfg.chunk_size}")
    out.mkdir(parents=True, exist_ok=True)   # after the checks: bad input leaves no run folder behind
    opt = make_optimizer(model, cfg)
    sampler = RowSampler(cfg.data.mix, seed=cfg.seed, local_text=cfg.data.local_text, kind_args=cfg.data.kind_args,
                         segment=mcfg.mamba_segment, exclude_fillers=cfg.data.exclude_fillers)
    rng = np.random.default_rng(cfg.seed)
    step, elapsed, tokens = 0, 0.0, 0
    state = load_state(out / STATE_FILE) if resume else None
    if state is not None:
        if state.get("model_config") != mcfg.to_dict():
            raise BadInputError(f"{out} holds a run of a different model config: pass another out_dir or resume=False")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        step, elapsed, tokens = state["step"], state["elapsed"], state["tokens"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
    elif (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink()
    write_json_atomic(out / "train_config.json", cfg.to_dict())
    eval_batch = RowSampler({"passkey": 1.0}, seed=cfg.seed, segment=mcfg.mamba_segment).batch(
        np.random.default_rng(cfg.seed + EVAL_SEED_OFFSET), cfg.train.eval_rows, cfg.train.eval_length)
    n_params = sum(p.numel() for p in model.parameters())
    log = open(out / "log.jsonl", "a")
    t = cfg.train
    bar = _Progress(t.max_steps, step)
    model.train()

    def progress() -> float:
        p = step / t.max_steps
        if t.time_budget_s:
            p = max(p, elapsed / t.time_budget_s)
        return p

    def checkpoint(final: bool = False) -> None:
        save_model_dir(model, out / "model")
        save_state(out / STATE_FILE, {"model": model.state_dict(), "optim": opt.state_dict(), "step": step,
                                      "elapsed": elapsed, "tokens": tokens, "rng": rng.bit_generator.state,
                                      "torch_rng": torch.get_rng_state(), "model_config": mcfg.to_dict()})

    def write(rec: dict) -> None:
        log.write(json.dumps(rec) + "\n")
        log.flush()

    def run_eval() -> dict:
        rec = {"kind": "eval", "step": step, "elapsed": round(elapsed, 1), "length": t.eval_length,
               **evaluate_rows(model, mcfg, eval_batch, device, t.dtype)}
        write(rec)
        if bar.bar is None:
            print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()), flush=True)
        return rec

    # selection negatives from other documents: the batch's other rows and a queue of earlier batches' chunks
    # (the queue is not checkpointed: a resumed run refills it within a few steps)
    queue = LandmarkQueue(cfg.data.selection_negatives) if cfg.data.selection_negatives else None
    neg_kinds = set(cfg.data.selection_negative_kinds)

    def negative_rows(batch) -> torch.Tensor:
        return torch.tensor([k in neg_kinds for k in batch.kinds], device=device)   # [B]

    def backward_rows(batch, seg: int, phase: int, weight: float) -> dict:
        """Forward and backward of one batch (its loss times `weight`, gradients accumulate); its stats."""
        with autocast(device, t.dtype):
            logits, aux = forward(model, batch.ids, mcfg, segment=seg, reset_phase=phase)
        loss, stats = loss_and_stats(logits, batch, cfg.data.answer_weight, cfg.data.lm_weight, aux,
                                     mcfg.chunk_size, retrieval_weight=cfg.data.retrieval_weight,
                                     retrieval_positions=cfg.data.retrieval_positions,
                                     selection_weight=cfg.data.selection_weight,
                                     negatives=queue.get() if queue is not None else None,
                                     negative_rows=negative_rows(batch) if queue is not None else None)
        if queue is not None and aux and aux.get("landmarks") is not None:
            queue.push(aux["landmarks"])
        stats.update(kind_stats(logits, batch))
        (loss * weight).backward()
        return stats

    last_eval = None
    step0 = step
    try:
        while progress() < 1.0:
            if (stop_after is not None and step - step0 >= stop_after) or (stop_at and time.time() >= stop_at):
                checkpoint()
                log.close()
                return out / "model"
            t0 = time.perf_counter()
            stage = cfg.stage(progress())
            lr = lr_at(step, progress(), cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = lr
            # a stage's reset spacing forces recall through HSA; archs without HSA keep their own
            seg = (stage.segment or mcfg.mamba_segment) if mcfg.has_hsa else mcfg.mamba_segment
            # a random reset phase per step: the model meets every alignment of the reset grid to the question
            rand = cfg.data.random_reset_phase if stage.random_phase is None else stage.random_phase
            phase = int(rng.integers(0, seg)) if (seg and rand) else 0
            sampler.segment, sampler.phase = seg, phase
            opt.zero_grad(set_to_none=True)
            batch = sampler.batch(rng, stage.batch, stage.length, mix=stage.mix).to(device)
            stats = backward_rows(batch, seg, phase, 1.0)
            if stage.side is not None:   # the side rows' gradient joins this step's (same reset grid)
                side = stage.side
                side_batch = sampler.batch(rng, side.batch, side.length, mix=side.mix or stage.mix).to(device)
                side_stats = backward_rows(side_batch, seg, phase, side.weight)
                stats.update({f"side_{k}": v for k, v in side_stats.items() if isinstance(v, float)})
                tokens += side.batch * side.length
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            for k in ("loss", "side_loss"):
                if k in stats and not math.isfinite(stats[k]):
                    raise RuntimeError(f"{k} became {stats[k]} at step {step}: lower optim.lr or check the data")
            opt.step()
            if device.type == "cuda" and (step + 1) % t.log_every == 0:
                torch.cuda.synchronize()
            step += 1
            tokens += stage.batch * stage.length
            if step - step0 > 1:
                elapsed += time.perf_counter() - t0   # the first step of a call (kernel compiles) is not counted
            if step % t.log_every == 0 or step == 1:
                stats.update({"kind": "train", "step": step, "lr": lr, "len": stage.length, "batch": stage.batch,
                              "grad_norm": float(gnorm), "elapsed": round(elapsed, 2), "tokens": tokens})
                write(stats)
                bar.update(0, stats)
            bar.update(1)
            if t.eval_every and step % t.eval_every == 0:
                last_eval = run_eval()
            if t.ckpt_every and step % t.ckpt_every == 0:
                checkpoint()
    finally:
        bar.close()
    last_eval = run_eval()
    checkpoint(final=True)
    log.close()
    plot_curves(out / "log.jsonl", out / "curves.png", title=f"{cfg.name} ({mcfg.arch}, {n_params / 1e6:.2f}M params)")
    write_json_atomic(out / "summary.json", {
        "name": cfg.name, "arch": mcfg.arch, "params": n_params,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad), "steps": step, "tokens": tokens,
        "wall_s": round(elapsed, 1), "device": torch.cuda.get_device_name(0) if device.type == "cuda" else
        platform.processor() or "cpu", "dtype": t.dtype if device.type == "cuda" else "fp32",
        "seed": cfg.seed, "config": cfg.source, "final_eval": last_eval, "torch": torch.__version__})
    return out / "model"
