"""lm-evaluation-harness adapter: `@register_model("ramba")` over the same Backend objects the runner uses.

lm-eval has no plugin discovery for models (deps.md §4), so `ramba-eval lm-eval ARGS...` imports this module,
which registers "ramba", and then hands over to lm-eval's own CLI:

    ramba-eval lm-eval run --model ramba --model_args model=ramba:checkpoints/ramba-tiny --tasks ...

model_args: model=BACKEND[:ID] (default: the embedded default model), tokenizer= (a tokenizer folder, e.g. the
checkpoint itself: lm-eval's RULER tasks read the same argument to size their prompts; `ramba-eval lm-eval` adds it
when it is missing), segment= (tokens per prefill call), max_length= (refuse longer requests; default: the
model's own limit, none for RAMba), batch_size= (rows per call for requests that share a context),
max_gen_toks=, trust_remote_code=, progress=.
The device comes from lm-eval's own --device (its default is cuda:0; without CUDA we fall back to the CPU).

loglikelihood and loglikelihood_rolling score each span in segmented prefills with per-position logits
(evals/lm_scoring.py); generate_until streams the context through the state and decodes greedily. A request
longer than max_length is an error, never a silent cut. Context and continuation are encoded apart (exact for
the byte tokenizer; for subword tokenizers the split point follows lm-eval's request).
"""
from __future__ import annotations

from pathlib import Path

from ramba.hub_kernels import shield_hub_kernels

shield_hub_kernels()   # lm-eval imports transformers, which imports the Hub's `kernels` (ramba/hub_kernels.py)
import lm_eval.models  # noqa: E402,F401  (the built-ins first: lm-eval loads them only while its registry is empty)
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402

from ramba.errors import BadInputError
from ramba.evals.backends import load_backend, parse_model_spec, resolve_device
from ramba.evals import lm_scoring


def _flag(v) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")


def _int_or_none(v, name: str) -> int | None:
    if v is None or v == "" or str(v).lower() in ("none", "auto"):
        return None
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise BadInputError(f"model argument {name}={v!r} is not an integer") from None
    if n < 1:
        raise BadInputError(f"model argument {name}={v!r} must be positive")
    return n


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
                 segment=lm_scoring.DEFAULT_SEGMENT, max_length=None, batch_size=None, trust_remote_code=False,
                 max_gen_toks: int = 256, progress=True, backend=None, **_):
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
        self.segment = _int_or_none(segment, "segment") or lm_scoring.DEFAULT_SEGMENT
        self.backend.segment = self.segment
        self.batch_size_per_call = _int_or_none(batch_size, "batch_size") or 16
        self.max_gen_toks = int(max_gen_toks)
        self.progress = _flag(progress)
        # Rows that share nothing (rolling documents) are packed into one call on GPUs only: on CPU one row per
        # call is faster; rows that share a context always run together after one prefill of it.
        self.pack_unshared = str(getattr(backend, "device", "cpu")).startswith("cuda")
        self.spans = lm_scoring.span_model_for(backend, _int_or_none(max_length, "max_length"))
        tok = backend.tokenizer
        # The token before the first one of a rolling loglikelihood: EOS when the tokenizer has one, else "\n".
        self.prefix_ids = [tok.eos_id] if tok.eos_id is not None else tok.encode("\n")

    @property
    def tokenizer_name(self) -> str:
        return self.backend.tokenizer.name

    @property
    def max_length(self) -> int | None:
        return self.spans.max_length

    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        enc = self.backend.tokenizer.encode
        ctx = enc(context) or list(self.prefix_ids)
        return ctx, enc(continuation)

    def _score(self, spans: list, desc: str) -> list:
        todo = [i for i, s in enumerate(spans) if s.continuation]
        scores = lm_scoring.score_spans(self.spans, [spans[i] for i in todo], segment=self.segment,
                                        batch_size=self.batch_size_per_call, progress=self.progress, desc=desc,
                                        pack_unshared=self.pack_unshared)
        out = [lm_scoring.SpanScore(0.0, True, 0)] * len(spans)
        for i, s in zip(todo, scores):
            out[i] = s
        return out

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        spans = [lm_scoring.Span(*map(tuple, self._split(*r.args))) for r in requests]
        return [(s.logprob, s.greedy) for s in self._score(spans, "loglikelihood")]

    def loglikelihood_rolling(self, requests) -> list[float]:
        enc = self.backend.tokenizer.encode
        spans = [lm_scoring.Span(tuple(self.prefix_ids), tuple(enc(r.args[0]))) for r in requests]
        return [s.logprob for s in self._score(spans, "loglikelihood_rolling")]

    def generate_until(self, requests) -> list[str]:
        tok = self.backend.tokenizer
        contexts = [tok.encode(r.args[0]) or list(self.prefix_ids) for r in requests]
        bar = lm_scoring.progress_bar(len(requests), "generate_until", self.progress, unit="req")
        out = []
        try:
            for r, ids in zip(requests, contexts):
                kw = r.args[1] or {}
                until = kw.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                limit = int(kw.get("max_gen_toks", self.max_gen_toks))
                out.append(lm_scoring.generate_greedy(self.backend, ids, until, limit, self.segment,
                                                      self.spans.max_length))
                bar.update(1)
        finally:
            bar.close()
        return out


# ---------------------------------------------------------------- `ramba-eval lm-eval`: fill in tokenizer=

def tokenizer_folder(model_spec: str | None) -> str | None:
    """A folder lm-eval's task utilities can load with AutoTokenizer for this model: the checkpoint (or hf model)
    folder when it holds tokenizer files, a cached copy of the byte tokenizer for byte-vocabulary models."""
    from ramba.evals import defaults
    from ramba.evals.runner import resolve_model_id
    from ramba.tasks.hf_byte_tokenizer import FILES, write_tokenizer_files
    name, model_id = parse_model_spec(model_spec or defaults.default_model())
    model_id = resolve_model_id(model_id)
    if model_id and Path(model_id).is_dir():
        if any((Path(model_id) / f).is_file() for f in FILES):
            return str(Path(model_id).resolve())
        if name == "hf":
            return None  # its own tokenizer is not in the folder: the user must say which one
    if name in ("ramba", "dummy", "oracle"):
        byte_dir = defaults.cache_dir() / "tokenizers" / "byte"
        if not all((byte_dir / f).is_file() for f in FILES):
            write_tokenizer_files(byte_dir)
        return str(byte_dir)
    return None


def lm_eval_task_dir() -> str:
    """Our tasks as lm-eval YAMLs (for --include_path): ramba_passkey, ramba_niah_*, ramba_vt, ..., group ramba_ruler."""
    import ramba.tasks.lm_eval as pkg
    return str(Path(pkg.__file__).resolve().parent)


def complete_args(argv: list[str]) -> list[str]:
    """`ramba-eval lm-eval`: our task folder joins --include_path, and tokenizer= joins --model_args."""
    args = complete_model_args(argv)
    if not any(a == "--include_path" or a.startswith("--include_path=") for a in args):
        if args and args[0] in ("run", "ls", "validate") or any(a == "--tasks" for a in args):
            args += ["--include_path", lm_eval_task_dir()]
    return args


def complete_model_args(argv: list[str]) -> list[str]:
    """With `--model ramba`, add tokenizer=<folder> to --model_args unless it names a tokenizer already, so
    lm-eval's own RULER tasks (which size prompts with an HF tokenizer read from model_args) can run."""
    args = []
    for a in argv:  # --opt=value -> --opt value, for the two options read here
        key, eq, val = a.partition("=")
        args += [key, val] if eq and key in ("--model", "--model_args") else [a]
    model_i = next((i for i, a in enumerate(args) if a == "--model" and i + 1 < len(args)), None)
    if model_i is None or args[model_i + 1] != "ramba":
        return args
    ma_i = next((i for i, a in enumerate(args) if a == "--model_args" and i + 1 < len(args)), None)
    current = args[ma_i + 1] if ma_i is not None else ""
    if current.strip().startswith("{"):
        return args  # a JSON dict: leave it as the user wrote it
    pairs = dict(p.split("=", 1) for p in current.split(",") if "=" in p)
    if pairs.get("tokenizer"):
        return args
    folder = tokenizer_folder(pairs.get("model"))
    if folder is None:
        return args
    joined = ",".join(x for x in (current, f"tokenizer={folder}") if x)
    if ma_i is None:
        return args + ["--model_args", joined]
    args[ma_i + 1] = joined
    return args
