"""The byte tokenizer in the Hugging Face format, so tools that load tokenizers by folder (lm-eval's RULER tasks,
`AutoTokenizer.from_pretrained(checkpoint)`) get exactly the ids of `ByteTokenizer` (id = UTF-8 byte).

Format: a `tokenizers` BPE model with the 256 byte-level symbols (GPT-2's byte-to-unicode map, id = byte) and no
merges, a byte-level pre-tokenizer without regex splitting and a byte-level decoder. `eos_token` is byte 0 (NUL):
lm-eval's `hf` model needs an end-of-text token; `split_special_tokens` keeps a literal "Ā" in a text (the
symbol of byte 0) encoded as its UTF-8 bytes, so ids match ours for every text.

Add the files to existing checkpoint folders (the shipped ones are re-trained from time to time):

    python -m ramba.tasks.hf_byte_tokenizer checkpoints/*/
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ramba.atomic import atomic_write_text

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
FILES = (TOKENIZER_JSON, TOKENIZER_CONFIG)
VERY_LARGE = int(1e30)   # transformers' "no limit" for model_max_length


def byte_symbols() -> list[str]:
    """GPT-2's byte -> printable unicode map, in byte order (symbol i encodes byte i)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def tokenizer_json() -> dict:
    """The tokenizer.json document (built with `tokenizers`, so its schema is the library's own)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    vocab = {s: i for i, s in enumerate(byte_symbols())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return json.loads(tok.to_str())


def tokenizer_config() -> dict:
    return {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": byte_symbols()[0],
            "split_special_tokens": True, "model_max_length": VERY_LARGE, "clean_up_tokenization_spaces": False,
            "add_bos_token": False, "add_eos_token": False}


def write_tokenizer_files(folder) -> list[Path]:
    """Write tokenizer.json + tokenizer_config.json into `folder` (atomic; existing files are replaced)."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, doc in ((TOKENIZER_JSON, tokenizer_json()), (TOKENIZER_CONFIG, tokenizer_config())):
        atomic_write_text(d / name, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        out.append(d / name)
    return out


def is_byte_tokenizer_dir(folder) -> bool:
    """True when `folder` holds exactly this byte tokenizer (so `load_tokenizer` can use ByteTokenizer)."""
    d = Path(folder)
    try:
        doc = json.loads((d / TOKENIZER_JSON).read_text(encoding="utf-8"))
        cfg = json.loads((d / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    want = tokenizer_json()
    return (all(doc.get(k) == want[k] for k in ("model", "pre_tokenizer", "decoder", "normalizer"))
            and not doc.get("added_tokens") and cfg.get("split_special_tokens") is True)


def main(argv: list[str] | None = None) -> int:
    folders = sys.argv[1:] if argv is None else argv
    if not folders:
        print("usage: python -m ramba.tasks.hf_byte_tokenizer CHECKPOINT_DIR [...]", file=sys.stderr)
        return 2
    for f in folders:
        if not (Path(f) / "config.json").is_file():
            print(f"error: {f!r} is not a checkpoint folder (no config.json)", file=sys.stderr)
            return 2
        cfg = json.loads((Path(f) / "config.json").read_text())
        if cfg.get("vocab_size", 256) != 256:
            print(f"error: {f!r} has a {cfg.get('vocab_size')}-token vocabulary, not the byte tokenizer's 256",
                  file=sys.stderr)
            return 2
        for p in write_tokenizer_files(f):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
