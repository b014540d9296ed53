"""Weight averaging (`ramba-eval average`): the output is the per-tensor mix of two checkpoints of one model, loads
and runs; mismatched inputs get one clear error line, never a half-written folder."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from ramba import RambaConfig, RambaModel
from ramba.evals.cli import main
from ramba.train.average import average_checkpoints
from ramba.train.checkpoint import load_model_dir

MICRO = dict(d_model=32, n_lower=1, n_upper=1, n_hsa=1, d_state=8, mamba_headdim=16, chunk_size=16, topk=2,
             hsa_heads=2, hsa_head_dim=8, retrieval_dim=16, enc_heads=2, enc_kv_heads=2, enc_ffn=64,
             mamba_segment=64, ssd_chunk=16, vocab_size=256)


def _checkpoint(folder, seed, dtype=torch.bfloat16, **over):
    torch.manual_seed(seed)
    model = RambaModel(RambaConfig(**{**MICRO, **over}))
    model.save_pretrained(folder)
    weights = {k: v.to(dtype).contiguous() for k, v in load_file(str(folder / "model.safetensors")).items()}
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "MODEL_CARD.md").write_text("card of this checkpoint only")
    return weights


def test_average_is_the_per_tensor_mix(tmp_path):
    wa = _checkpoint(tmp_path / "a", seed=1)
    wb = _checkpoint(tmp_path / "b", seed=2)            # another init: every tensor differs (a fair test of the mix)
    out = average_checkpoints(tmp_path / "a", tmp_path / "b", 0.25, tmp_path / "soup")
    w = load_file(str(out / "model.safetensors"))
    assert w.keys() == wa.keys()
    for k in wa:
        want = (0.75 * wa[k].double() + 0.25 * wb[k].double())          # float64, written from the definition
        assert w[k].dtype == torch.bfloat16, k
        # one bf16 rounding of the result: relative error <= 2^-8 of its magnitude
        assert torch.allclose(w[k].double(), want, rtol=2 ** -8, atol=1e-6), k
    assert not (out / "MODEL_CARD.md").exists()         # A's card describes A, not the average
    assert json.loads((out / "config.json").read_text())["d_model"] == 32
    model = load_model_dir(out)
    logits = model(torch.randint(0, 256, (1, 40)))
    logits = logits.logits if hasattr(logits, "logits") else logits
    assert torch.isfinite(logits).all()


def test_weight_ends_give_the_inputs(tmp_path):
    wa = _checkpoint(tmp_path / "a", seed=1)
    wb = _checkpoint(tmp_path / "b", seed=2)
    for w, want in ((0.0, wa), (1.0, wb)):
        got = load_file(str(average_checkpoints(tmp_path / "a", tmp_path / "b", w, tmp_path / f"s{w}")
                            / "model.safetensors"))
        assert all(torch.equal(got[k], want[k]) for k in want)


def _bad(argv, capsys, must_mention):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert must_mention.lower() in err[0].lower(), err[0]


def test_bad_inputs_get_one_clear_line(tmp_path, capsys):
    _checkpoint(tmp_path / "a", seed=1)
    _checkpoint(tmp_path / "wide", seed=2, d_model=48)
    out = tmp_path / "soup"
    _bad(["average", str(tmp_path / "a"), str(tmp_path / "wide"), "--out", str(out)], capsys, "different models")
    _bad(["average", str(tmp_path / "a"), str(tmp_path / "nothing"), "--out", str(out)], capsys,
         "not a checkpoint folder")
    _bad(["average", str(tmp_path / "a"), str(tmp_path / "a"), "-w", "1.5", "--out", str(out)], capsys, "[0, 1]")
    _bad(["average", str(tmp_path / "a"), str(tmp_path / "wide"), "--out", str(tmp_path / "a")], capsys,
         "overwrite")
    assert not out.exists() and not (tmp_path / "soup.tmp").exists()


def test_cli_writes_the_folder(tmp_path, capsys):
    _checkpoint(tmp_path / "a", seed=1)
    _checkpoint(tmp_path / "b", seed=2)
    try:
        main(["average", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "soup")])
    except SystemExit as e:
        assert e.code in (0, None)
    assert "checkpoint:" in capsys.readouterr().out
    assert (tmp_path / "soup" / "model.safetensors").is_file()
