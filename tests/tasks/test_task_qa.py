"""RULER qa_1 / qa_2 over local SQuAD / HotpotQA files in the upstream schema (tiny fixtures)."""
from pathlib import Path

import pytest

from ramba.errors import BadInputError
from ramba.tasks import ByteTokenizer, get_task

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "qa"


@pytest.fixture(autouse=True)
def _data(monkeypatch, tmp_path):
    monkeypatch.setenv("RAMBA_EVAL_SQUAD", str(FIX / "squad_mini.json"))
    monkeypatch.setenv("RAMBA_EVAL_HOTPOTQA", str(FIX / "hotpot_mini.json"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds"))


@pytest.mark.parametrize("task", ["qa_1", "qa_2"])
def test_exact_length_gold_document_and_answer(task):
    tok = ByteTokenizer()
    for s in get_task(task).generate([700, 2048], [0.0, 0.5, 1.0], 1, 0, tok):
        text = tok.decode(s.prompt_ids().tolist())
        assert len(s.prompt_ids()) == s.length
        assert text.startswith("Answer the question") and text.endswith("Answer:")
        assert s.meta["question"] in text and any(r in text for r in s.meta["references"])
        at = tok.decode(s.prompt_ids()[s.needle_token_pos:].tolist())
        assert at.startswith("Document:\n") and any(r in at.split("Document:")[1] or r in at for r in s.meta["references"])
        before = tok.decode(s.prompt_ids()[:s.needle_token_pos].tolist())
        assert before.endswith("\n\n")    # the gold block starts between whole documents
        assert s.answer_text == " " + s.meta["references"][0]
        res = get_task(task).score(s, " " + s.meta["references"][-1].upper() + ".", "generated")
        assert res["correct"] and res["metric"] == "string_match_part"
        assert get_task(task).score(s, " nothing", "generated")["score"] == 0.0


def test_same_seed_same_ids_and_missing_file_is_one_line_error(monkeypatch):
    tok = ByteTokenizer()
    a = next(iter(get_task("qa_1").generate([1024], [0.5], 1, 7, tok))).prompt_ids()
    b = next(iter(get_task("qa_1").generate([1024], [0.5], 1, 7, tok))).prompt_ids()
    assert (a == b).all()
    monkeypatch.delenv("RAMBA_EVAL_SQUAD")
    with pytest.raises(BadInputError, match="RAMBA_EVAL_SQUAD"):
        next(iter(get_task("qa_1").generate([1024], [0.5], 1, 0, tok)))
