import json
import os

import numpy as np
import pytest

from ramba.errors import BadInputError
from ramba.tasks import ByteTokenizer, HFTokenizer, Tokenizer, load_tokenizer


def random_text(rng, n):
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\n") + \
        ["é", "ü", "ß", "ж", "中", "文", "🙂", "—"]
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))


def test_byte_roundtrip_and_contract():
    rng = np.random.default_rng(11)
    tok = load_tokenizer("byte")
    assert isinstance(tok, ByteTokenizer) and isinstance(tok, Tokenizer)
    assert (tok.name, tok.vocab_size, tok.eos_id) == ("byte", 256, None)
    for _ in range(5):
        text = random_text(rng, 300)
        ids = tok.encode(text)
        assert ids == list(text.encode("utf-8")) and max(ids) < 256
        assert tok.decode(ids) == text
    # a cut multi-byte character decodes with a replacement mark instead of raising
    assert tok.decode(tok.encode("中")[:2]) == "\ufffd"
    with pytest.raises(BadInputError, match="0..255"):
        tok.decode([65, 256])
    fp = tok.fingerprint()
    assert fp == ByteTokenizer().fingerprint() and len(fp) == 64 and int(fp, 16) >= 0


def test_hf_directory_roundtrip(hf_tok_dir, hf_tok):
    rng = np.random.default_rng(12)
    assert isinstance(hf_tok, HFTokenizer) and isinstance(hf_tok, Tokenizer)
    assert hf_tok.name == f"hf:{os.path.basename(hf_tok_dir)}"
    assert hf_tok.vocab_size == 1200 and hf_tok.eos_id is not None
    for _ in range(5):
        text = random_text(rng, 200)
        ids = hf_tok.encode(text)
        assert hf_tok.eos_id not in ids            # no specials added
        assert hf_tok.decode(ids) == text          # byte-level BPE is lossless
    # the batch path agrees with one-by-one encoding
    texts = [random_text(rng, 50) for _ in range(8)]
    assert hf_tok.encode_batch(texts) == [hf_tok.encode(t) for t in texts]


def test_hf_bare_tokenizer_json(hf_tok_dir, hf_tok, tmp_path):
    bare = load_tokenizer(os.path.join(hf_tok_dir, "tokenizer.json"))
    text = random_text(np.random.default_rng(13), 300)
    assert bare.encode(text) == hf_tok.encode(text)
    # same vocabulary and merges -> same cache fingerprint, whichever way it was loaded
    assert bare.fingerprint() == hf_tok.fingerprint()
    # a folder with only tokenizer.json also loads
    only = tmp_path / "only_json"
    only.mkdir()
    (only / "tokenizer.json").write_text(open(os.path.join(hf_tok_dir, "tokenizer.json")).read())
    assert load_tokenizer(str(only)).encode(text) == hf_tok.encode(text)


def test_fingerprints_separate_vocabularies(hf_tok_dir, hf_tok, tmp_path, bpe_trainer):
    again = load_tokenizer(hf_tok_dir)
    assert again.fingerprint() == hf_tok.fingerprint()
    other = load_tokenizer(bpe_trainer(tmp_path / "other", vocab_size=700, seed=2))
    assert len({other.fingerprint(), hf_tok.fingerprint(), ByteTokenizer().fingerprint()}) == 3
    # runtime settings (truncation) are not part of the vocabulary: the fingerprint must not move
    again._backend.backend_tokenizer.enable_truncation(max_length=8)
    again._fingerprint = None
    assert again.fingerprint() == hf_tok.fingerprint()


@pytest.mark.parametrize("kind", ["missing", "empty_dir", "corrupt_json", "corrupt_config", "empty_spec"])
def test_bad_tokenizer_paths(kind, tmp_path):
    path = tmp_path / "tok"
    if kind == "empty_dir":
        path.mkdir()
    elif kind == "corrupt_json":
        path.mkdir()
        (path / "tokenizer.json").write_text("{not json")
    elif kind == "corrupt_config":
        path.mkdir()
        (path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "NoSuchTokenizerClass"}))
    spec = "" if kind == "empty_spec" else str(path)
    with pytest.raises(BadInputError) as err:
        load_tokenizer(spec)
    msg = str(err.value)
    assert "\n" not in msg and "'byte'" in msg      # one line, and it says the fix
    if spec:
        assert str(path) in msg                     # and it names the path
