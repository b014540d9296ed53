"""What names a run and what proves its model is the same one.

A model or tokenizer path is written one canonical way before it is hashed into the run id, so the same checkpoint
spelled two ways (`checkpoints/ramba-tiny`, `./checkpoints/ramba-tiny`, `/abs/.../checkpoints/ramba-tiny`) gives
one run id, and `config.yaml` holds no machine-specific absolute path when it can avoid it:
  inside the checkout  -> relative to it       (`ramba:checkpoints/ramba-tiny`)
  under $HOME          -> `~/...`
  elsewhere            -> absolute
A name that is no existing path (a preset such as `ramba:tiny`, `byte`) is kept as written.

Pure Python (no torch): the dry run and the CLI use it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ramba.evals.defaults import REPO_ROOT

FULL_HASH_MAX_BYTES = 1 << 30  # weights up to 1 GiB are hashed in full (~1 s); larger ones by size + head + tail
_EDGE_BYTES = 1 << 20


def _existing(ident: str) -> Path | None:
    """The absolute path an ID names: as written (absolute or `~`), else against the current folder, else the
    checkout. None when it names no existing path."""
    p = Path(ident).expanduser()
    if p.is_absolute():
        return p.resolve() if p.exists() else None
    for root in (Path.cwd(), REPO_ROOT):
        if (root / p).exists():
            return (root / p).resolve()
    return None


def canonical_path(ident: str) -> str:
    """The one spelling of a path-like ID (see the module docstring); other IDs are returned unchanged."""
    p = _existing(ident)
    if p is None:
        return ident
    for root, prefix in ((REPO_ROOT.resolve(), ""), (Path.home().resolve(), "~/")):
        try:
            rel = p.relative_to(root)
        except ValueError:
            continue
        if rel.parts:
            return prefix + rel.as_posix()
    return str(p)


def canonical_model_spec(spec: str) -> str:
    """`BACKEND[:ID]` with ID canonical: `ramba:/abs/checkout/checkpoints/x` -> `ramba:checkpoints/x`."""
    backend, sep, ident = spec.partition(":")
    if not sep or not ident:
        return spec
    return f"{backend}:{canonical_path(ident)}"


def resolve_path(ident: str) -> str:
    """The inverse, at load time: a canonical relative ID is relative to the checkout (else the current folder)."""
    p = Path(ident).expanduser()
    if p.is_absolute():
        return str(p)
    for root in (REPO_ROOT, Path.cwd()):
        if (root / p).exists():
            return str((root / p).resolve())
    return ident


def weights_fingerprint(model_dir: str | Path) -> str | None:
    """sha256 over a model folder's config.json and weight files, so a resumed or compared run can tell that a
    checkpoint was replaced under the same path. None when the ID is not a folder (a preset, dummy)."""
    d = Path(model_dir)
    if not d.is_dir():
        return None
    files = [d / "config.json"] + sorted(d.glob("*.safetensors")) + sorted(d.glob("*.bin"))
    h = hashlib.sha256()
    for f in files:
        if not f.is_file():
            continue
        size = f.stat().st_size
        h.update(f"{f.name}:{size}\n".encode())
        with open(f, "rb") as fh:
            if size <= FULL_HASH_MAX_BYTES:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            else:  # big checkpoints: the header (names, shapes) and both ends are enough to tell versions apart
                h.update(fh.read(_EDGE_BYTES))
                fh.seek(size - _EDGE_BYTES)
                h.update(fh.read(_EDGE_BYTES))
    return h.hexdigest()[:16]

