"""lm-evaluation-harness adapter: `def _device(device: str | None) -> str:
    import torch
    if device and device.startswith("cuda") and not torch.cuda.is_available():
        import logging
        logging.getLogger(__name__).warning("no CUDA device: running on cpu instead of %s", device)
        return "cpu"
    return resolve_device(device or "auto")


@register_model("ramba")` over the same Backend objects the runner uses.

lm-eval has no plugin discovery for models (deps.md §4), so `ramba-eval lm-eval ARGS...` imports this module,
which registers "ramba", and then hands over to lm-eval's own CLI:

    ramba-eval lm-eval run --model ramba --model_args model=ramba:checkpoints/ramba-tiny --tasks ...

model_args: model=BACKEND[:ID] (default: the embedded default model), tokenizer=, segment=, trust_remote_code=.
The device comes from lm-eval's own --device (its default is cuda:0; without CUDA we fall back to the CPU).
Generation is greedy; prompts are fed in `segment`-token pieces. Context and continuation are encoded apart
(exact for the byte tokenizer; for subword tokenizers the split point follows lm-eval's request).
"""
from __future__ import annotations

import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from ramba.evals.backends import load_backend, parse_model_spec, resolve_device


def _flag(v) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")


def _device(device: str | None) -> str:
    import torch
    if device and device.startswith("cuda") and not torch.cuda.is_available():
        import logging
        logging.getLogger(__name__).warning("no CUDA device: running on cpu instead of %s", device)
        return "cpu"
    return resolve_device(device or "auto")


@register_model("ramba")
class RambaLM(LM):
    def __init__(self, model: str | None = None, tokenizer: str | None = None, device: str | None = None,
                 segment: int = 4096, trust_remote_code=False, max_gen_toks: int = 256, backend=None, **_):
        super().__init__()
        if backend is None:
            from ramba.evals import defaults
            from ramba.evals.runner import resolve_model_id
            name, model_id = parse_model_spec(model or defaults.default_model())
            model_id = resolve_model_id(model_id)
            if name == "hf" and model_id and model_id == str(defaults.tiny_hf_dir()):
                defaults.ensure_tiny_hf_model()
            backend = load_backend(name, model_id, device=_device(device), tokenizer=tokenizer,
                                   trust_remote_code=_flag(trust_remote_code))
        self.backend = backend
        self.backend.segment = int(segment)
        self.max_gen_toks = int(max_gen_toks)
        tok = backend.tokenizer
        # The token before the first one of a rolling loglikelihood: EOS when the tokenizer has one, else "\n".
        self.prefix_ids = [tok.eos_id] if tok.eos_id is not None else tok.encode("\n")

    @property
    def tokenizer_name(self) -> str:
        return self.backend.tokenizer.name

    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        enc = self.backend.tokenizer.encode
        ctx = enc(context) or list(self.prefix_ids)
        return ctx, enc(continuation)

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        out = []
        for r in requests:
            ctx, cont = self._split(*r.args)
            out.append(self.backend.loglikelihood(ctx, cont) if cont else (0.0, True))
        return out

    def loglikelihood_rolling(self, requests) -> list[float]:
        out = []
        for r in requests:
            ids = self.backend.tokenizer.encode(r.args[0])
            out.append(self.backend.loglikelihood(list(self.prefix_ids), ids)[0] if ids else 0.0)
        return out

    def generate_until(self, requests) -> list[str]:
        be, tok = self.backend, self.backend.tokenizer
        out = []
        for r in requests:
            context, kw = r.args
            until = kw.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            limit = int(kw.get("max_gen_toks", self.max_gen_toks))
            ids = np.asarray(tok.encode(context) or self.prefix_ids, dtype=np.int64)
            be.reset(prompt_length=len(ids))
            for s in range(0, len(ids), be.segment):
                logits = be.consume(ids[s:s + be.segment])
            gen: list[int] = []
            text = ""
            for _ in range(limit):
                t = int(logits.argmax())
                if tok.eos_id is not None and t == tok.eos_id:
                    break
                gen.append(t)
                text = tok.decode(gen)
                if any(u in text for u in until):
                    break
                logits = be.step(t)
            for u in until:  # lm-eval convention: cut at the first stop sequence
                text = text.split(u)[0]
            out.append(text)
        return out
