"""Tokenizers the harness builds prompts with: UTF-8 bytes, or any local Hugging Face tokenizer.

Prompts are assembled at token level from pre-tokenized pieces (see `ramba.tasks.assemble`), so a tokenizer only
has to encode short texts. `fingerprint()` keys the on-disk sample cache: two tokenizers with the same vocabulary,
merges and pre-processing share cached samples; any change in them gives new samples.

Nothing here downloads: Hugging Face tokenizers are read with `local_files_only=True`.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Protocol, Sequence, runtime_checkable

from ramba.errors import BadInputError


@runtime_checkable
class Tokenizer(Protocol):
    name: str                      # "byte" or "hf:<dir name>"
    vocab_size: int
    eos_id: int | None

    def encode(self, text: str) -> list[int]: ...          # no BOS/EOS added
    def decode(self, ids: Sequence[int]) -> str: ...
    def fingerprint(self) -> str: ...                       # stable hash of the vocabulary/merges


def encode_batch(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Encode many short texts; uses the tokenizer's batch path when it has one (HF: parallel, in Rust)."""
    batch = getattr(tokenizer, "encode_batch", None)
    if batch is not None:
        return batch(texts)
    return [tokenizer.encode(t) for t in texts]


class ByteTokenizer:
    """Ids are the UTF-8 bytes of the text: vocab 256, no special tokens (the project's own models use it)."""

    name = "byte"
    vocab_size = 256
    eos_id = None

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(t.encode("utf-8")) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        try:
            data = bytes(int(i) for i in ids)
        except ValueError:
            bad = [int(i) for i in ids if not 0 <= int(i) < 256][:3]
            raise BadInputError(f"byte tokenizer ids must be in 0..255, got {bad}: the ids come from a model "
                                f"with another vocabulary") from None
        # A model may emit a partial multi-byte character: replace it rather than fail on it.
        return data.decode("utf-8", errors="replace")

    def fingerprint(self) -> str:
        return hashlib.sha256(b"ramba-eval byte tokenizer: utf-8, vocab 256, no specials").hexdigest()

    def __repr__(self) -> str:
        return "ByteTokenizer()"


# Keys of a tokenizer.json that describe runtime settings, not the vocabulary: left out of the fingerprint so that
# enabling truncation or padding on a loaded tokenizer does not invalidate the cache.
_RUNTIME_KEYS = ("truncation", "padding")


class HFTokenizer:
    """A local Hugging Face tokenizer: a directory for `transformers.AutoTokenizer`, or a bare `tokenizer.json`.

    `backend` is either a `transformers` tokenizer or a `tokenizers.Tokenizer`; `encode` never adds specials.
    """

    def __init__(self, backend, name: str):
        self._backend = backend
        self._is_transformers = not _is_bare_tokenizers(backend)
        self.name = name
        if self._is_transformers:
            self.vocab_size = len(backend)
            self.eos_id = backend.eos_token_id
        else:
            self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
            self.eos_id = None
        self._fingerprint: str | None = None

    def encode(self, text: str) -> list[int]:
        if self._is_transformers:
            return list(self._backend.encode(text, add_special_tokens=False))
        return list(self._backend.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        if self._is_transformers:
            return [list(x) for x in self._backend(list(texts), add_special_tokens=False)["input_ids"]]
        return [list(e.ids) for e in self._backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        if self._is_transformers:
            return self._backend.decode(ids, skip_special_tokens=False)
        return self._backend.decode(ids, skip_special_tokens=False)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = _hf_fingerprint(self._backend, self._is_transformers)
        return self._fingerprint

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r}, vocab_size={self.vocab_size})"


def _is_bare_tokenizers(backend) -> bool:
    try:
        import tokenizers
    except ImportError:  # pragma: no cover - tokenizers ships with transformers
        return False
    return isinstance(backend, tokenizers.Tokenizer)


def _hf_fingerprint(backend, is_transformers: bool) -> str:
    """sha256 over the canonical tokenizer.json (vocab, merges, normalizer, pre-tokenizer, added tokens)."""
    rust = backend if not is_transformers else getattr(backend, "backend_tokenizer", None)
    h = hashlib.sha256()
    if rust is not None:
        spec = json.loads(rust.to_str())
        for key in _RUNTIME_KEYS:
            spec.pop(key, None)
        h.update(json.dumps(spec, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode())
    else:  # a slow (Python) tokenizer: its vocabulary in id order is what defines the ids
        vocab = sorted(backend.get_vocab().items(), key=lambda kv: (kv[1], kv[0]))
        h.update(type(backend).__name__.encode())
        h.update(json.dumps(vocab, ensure_ascii=True, separators=(",", ":")).encode())
    return h.hexdigest()


_FIX = "pass 'byte' or the path of a local Hugging Face tokenizer directory (or its tokenizer.json)"


def load_tokenizer(spec: str) -> Tokenizer:
    """"byte" -> ByteTokenizer; a local directory or tokenizer.json path -> HFTokenizer. Never downloads."""
    if not isinstance(spec, str) or not spec.strip():
        raise BadInputError(f"tokenizer spec {spec!r} is empty or not a string: {_FIX}")
    if spec == "byte":
        return ByteTokenizer()
    path = os.path.abspath(os.path.expanduser(spec))
    if not os.path.exists(path):
        raise BadInputError(f"tokenizer path {spec!r} does not exist: {_FIX}")
    if not os.access(path, os.R_OK):
        raise BadInputError(f"tokenizer path {spec!r} is not readable: fix its permissions or {_FIX}")
    if os.path.isfile(path):
        return HFTokenizer(_load_bare(path), name=f"hf:{os.path.basename(os.path.dirname(path))}")
    from ramba.tasks.hf_byte_tokenizer import is_byte_tokenizer_dir
    if is_byte_tokenizer_dir(path):  # our byte tokenizer in the HF format (checkpoint folders): same ids
        return ByteTokenizer()
    name = f"hf:{os.path.basename(path.rstrip(os.sep))}"
    has_config = any(os.path.isfile(os.path.join(path, f))
                     for f in ("tokenizer_config.json", "config.json", "vocab.json", "tokenizer.model"))
    bare = os.path.join(path, "tokenizer.json")
    if not has_config and os.path.isfile(bare):
        return HFTokenizer(_load_bare(bare), name=name)
    if not has_config:
        raise BadInputError(f"tokenizer path {spec!r} holds no tokenizer.json or tokenizer_config.json: {_FIX}")
    try:
        from ramba.hub_kernels import shield_hub_kernels
        shield_hub_kernels()
        import transformers
        backend = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any failure of a foreign loader is a bad input here
        if os.path.isfile(bare):  # a config transformers cannot use, but a usable tokenizer.json
            return HFTokenizer(_load_bare(bare), name=name)
        raise BadInputError(f"cannot load tokenizer from {spec!r} ({_one_line(e)}): {_FIX}") from None
    return HFTokenizer(backend, name=name)


def _load_bare(path: str):
    try:
        import tokenizers
        return tokenizers.Tokenizer.from_file(path)
    except Exception as e:  # noqa: BLE001
        raise BadInputError(f"cannot read tokenizer file {path!r} ({_one_line(e)}): {_FIX}") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(e).__name__}: {msg[:200]}" if msg else type(e).__name__
