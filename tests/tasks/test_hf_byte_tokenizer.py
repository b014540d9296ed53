"""The byte tokenizer in the HF format: every shipped checkpoint has it, and AutoTokenizer gives our ids."""
from pathlib import Path

import pytest

from ramba.tasks.hf_byte_tokenizer import FILES, is_byte_tokenizer_dir, write_tokenizer_files
from ramba.tasks.tokenizers import ByteTokenizer, load_tokenizer

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["", "hello world", "  two  spaces\tand\nlines\r\n", "wörld ünïcode 日本語 🙂", "Ā literal, \x00 nul",
         "The special magic number for brave-lion is: 1234567.", "x" * 5000]


def checkpoint_dirs():
    return sorted(d for d in (REPO / "checkpoints").iterdir() if d.is_dir())


def test_every_shipped_checkpoint_has_the_tokenizer_files():
    dirs = checkpoint_dirs()
    assert dirs
    for d in dirs:
        missing = [f for f in FILES if not (d / f).is_file()]
        assert not missing, f"{d.name} lacks {missing}: run python -m ramba.tasks.hf_byte_tokenizer {d}"
        assert is_byte_tokenizer_dir(d)
        assert isinstance(load_tokenizer(str(d)), ByteTokenizer)


@pytest.mark.parametrize("d", checkpoint_dirs(), ids=lambda d: d.name)
def test_autotokenizer_gives_our_ids(d):
    from transformers import AutoTokenizer
    hf, ours = AutoTokenizer.from_pretrained(str(d)), ByteTokenizer()
    for t in TEXTS:
        assert hf(t).input_ids == ours.encode(t) == hf.encode(t, add_special_tokens=False)
    assert hf([TEXTS[1], TEXTS[3]]).input_ids == [ours.encode(TEXTS[1]), ours.encode(TEXTS[3])]
    assert hf.decode(ours.encode(TEXTS[3])) == TEXTS[3]
    assert hf.eos_token_id == 0 and len(hf) == 256


def test_lm_eval_ruler_loads_it_by_folder(tmp_path):
    from lm_eval.tasks.ruler.common_utils import get_tokenizer
    write_tokenizer_files(tmp_path)
    assert get_tokenizer(tokenizer=str(tmp_path))("abc").input_ids == [97, 98, 99]


def test_save_pretrained_writes_them(tmp_path):
    from ramba import RambaConfig, RambaModel
    RambaModel(RambaConfig.from_preset("tiny")).save_pretrained(tmp_path / "m")
    assert is_byte_tokenizer_dir(tmp_path / "m")


def test_the_script_adds_them(tmp_path, capsys):
    from ramba.tasks.hf_byte_tokenizer import main
    (tmp_path / "config.json").write_text('{"vocab_size": 256}')
    assert main([str(tmp_path)]) == 0 and is_byte_tokenizer_dir(tmp_path)
    (tmp_path / "config.json").write_text('{"vocab_size": 32000}')
    assert main([str(tmp_path)]) == 2
