"""Backend protocol and registry (docs/contracts.md). Heavy backends register as lazy "module:attr" strings,
so listing backends or planning a run never imports torch.

Model spec on the CLI: BACKEND[:ID], e.g. `dummy`, `oracle`, `hf:/path/to/dir`, `ramba:tiny`,
`ramba:checkpoints/ramba-tiny`.
"""
from __future__ import annotations

import importlib
from typing import Callable, Protocol, Sequence, runtime_checkable

from ramba.errors import BadInputError
from ramba.evals.devices import resolve_device  # noqa: F401  (re-exported: callers import it from here)


@runtime_checkable
class Backend(Protocol):
    name: str
    model_id: str
    tokenizer: object      # ramba.tasks.tokenizers.Tokenizer
    device: str

    def reset(self, prompt_length: int | None = None) -> None: ...  # length known: RAMba anchors its resets
    def consume(self, ids): ...            # ids np.ndarray int -> logits of its last token, torch [V] fp32
    # optional: consume_more(ids) -> None, "more prompt follows" (feed_prompt uses it for all but the last piece)
    def step(self, token: int): ...        # one token -> its logits, torch [V] fp32
    def state_bytes(self) -> int: ...
    def loglikelihood(self, context: Sequence[int], continuation: Sequence[int]) -> tuple[float, bool]: ...


def feed_prompt(be, pieces):
    """Feed a prompt's pieces (np.ndarray int each) to a backend -> the logits of its last token. A backend with
    the optional `consume_more(ids)` (more prompt follows, no logits wanted: RAMba then runs only its lower stack
    up to a reset boundary) gets every piece but the last that way; others get consume() for each."""
    more = getattr(be, "consume_more", None)
    it = iter(pieces)
    prev = next(it, None)
    if prev is None:
        raise BadInputError("empty prompt")
    for piece in it:
        if more is not None:
            more(prev)
        else:
            be.consume(prev)
        prev = piece
    return be.consume(prev)


BACKENDS: dict[str, str | Callable] = {
    "dummy": "ramba.evals.backend_dummy:DummyBackend",
    "oracle": "ramba.evals.backend_dummy:OracleBackend",
    "hf": "ramba.evals.backend_hf:HFBackend",
    "ramba": "ramba.evals.ramba_backend:RambaBackend",
}

DESCRIPTIONS: dict[str, str] = {
    "dummy": "random but deterministic logits (byte vocabulary); for plumbing tests",
    "oracle": "copies what followed the prompt's tail earlier in the context; proves scoring can reach 100%",
    "hf": "any local transformers causal LM directory (hf:/path/to/dir)",
    "ramba": "RAMba (Mamba2 + HSA): ramba:<checkpoint dir> or ramba:<preset> (random init)",
}


def register_backend(name: str, description: str = ""):
    """Decorator: register a backend factory `factory(model, device, **kw) -> Backend` under `name`."""
    def deco(factory):
        BACKENDS[name] = factory
        if description:
            DESCRIPTIONS[name] = description
        return factory
    return deco


def parse_model_spec(spec: str) -> tuple[str, str | None]:
    """'hf:/a/b' -> ('hf', '/a/b'); 'dummy' -> ('dummy', None). Checks the backend name only."""
    name, sep, model = spec.partition(":")
    name = name.strip()
    if name not in BACKENDS:
        raise BadInputError(
            f"unknown model backend {name!r} in {spec!r}; use BACKEND[:ID] with BACKEND one of "
            f"{', '.join(sorted(BACKENDS))} (see `ramba-eval models`)")
    if sep and not model:
        raise BadInputError(f"model spec {spec!r} has an empty ID after ':'; write e.g. hf:/path/to/dir")
    return name, (model if sep else None)


def _resolve(name: str) -> Callable:
    target = BACKENDS[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            target = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                raise BadInputError(f"backend {name!r} is not available in this install ({module} is missing)") from None
            raise
        BACKENDS[name] = target
    return target


def load_backend(name: str, model: str | None, device: str, **kw) -> Backend:
    """Build a backend by registry name. kw: tokenizer (spec or object), trust_remote_code, ..."""
    if name not in BACKENDS:
        raise BadInputError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    factory = _resolve(name)
    return factory(model, device=device, **kw)


class LoglikelihoodMixin:
    """Shared loglikelihood on top of reset/consume/step, so every backend answers lm-eval style requests."""

    def loglikelihood(self, context: Sequence[int], continuation: Sequence[int]) -> tuple[float, bool]:
        import numpy as np
        import torch
        if len(context) == 0 or len(continuation) == 0:
            raise BadInputError("loglikelihood needs a non-empty context and continuation")
        self.reset(prompt_length=len(context))
        ctx = np.asarray(context, dtype=np.int64)
        seg = int(getattr(self, "segment", 4096))
        logits = feed_prompt(self, (ctx[s:s + seg] for s in range(0, len(ctx), seg)))   # segments, as in a run
        total, greedy = 0.0, True
        for i, tok in enumerate(continuation):
            logp = torch.log_softmax(logits.float(), dim=-1)
            total += float(logp[tok])
            greedy = greedy and int(torch.argmax(logits)) == int(tok)
            if i + 1 < len(continuation):
                logits = self.step(int(tok))
        return total, greedy
