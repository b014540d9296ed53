"""The training loop on a micro model (CPU, seconds): it learns a trivial task, checkpoints, and a run that is
stopped and resumed ends with exactly the weights of an uninterrupted run."""
import json

import numpy as np
import pytest
import torch

from ramba.train.config import config_from_dict
from ramba.train.run import train_config

MICRO = {"d_model": 32, "n_lower": 1, "n_upper": 1, "n_hsa": 1, "d_state": 8, "mamba_headdim": 16,
         "chunk_size": 16, "topk": 2, "hsa_heads": 2, "hsa_head_dim": 8, "retrieval_dim": 16, "enc_heads": 2,
         "enc_kv_heads": 2, "enc_ffn": 64, "mamba_segment": 64, "fusion": "softmax", "ssd_chunk": 16}


def micro_config(steps, seed, lr=3e-3, mix=None, length=128):
    return config_from_dict({
        "name": "micro", "seed": seed, "model": {"preset": "tiny", "overrides": MICRO},
        "data": {"mix": mix or {"passkey": 1.0, "mqar": 1.0}, "kind_args": {"mqar": {"chunk": 16}}},
        "curriculum": [{"until": 0.5, "length": length, "batch": 2}, {"until": 1.0, "length": length + 64, "batch": 2}],
        "optim": {"lr": lr, "warmup_steps": 2},
        "train": {"max_steps": steps, "log_every": 1, "eval_every": 0, "eval_length": 192, "eval_rows": 2,
                  "ckpt_every": 0, "device": "cpu"}})


def _weights(path):
    from safetensors.torch import load_file
    return load_file(str(path / "model.safetensors"))


def test_stop_and_resume_matches_uninterrupted(tmp_path):
    seed = 20260311                                          # fixed: a failure must reproduce
    cfg = micro_config(steps=4, seed=seed)
    a = train_config(cfg, tmp_path / "a")
    train_config(cfg, tmp_path / "b", stop_after=2)
    state = torch.load(tmp_path / "b" / "train_state.pt", weights_only=False)
    assert state["step"] == 2
    b = train_config(cfg, tmp_path / "b", resume=True)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == [1, 2, 3, 4]
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["tokens"] > 0
    assert (tmp_path / "b" / "curves.png").stat().st_size > 1000
    assert (b / "config.json").is_file()


def test_a_wall_clock_stop_checkpoints_and_resumes(tmp_path):
    """stop_at (a time-limited call's deadline) leaves a resumable checkpoint and no summary; resume finishes."""
    import time
    cfg = micro_config(steps=3, seed=20260313)
    train_config(cfg, tmp_path / "s", stop_at=time.time() - 1)          # already past: stops before any step
    assert torch.load(tmp_path / "s" / "train_state.pt", weights_only=False)["step"] == 0
    assert not (tmp_path / "s" / "summary.json").exists()
    train_config(cfg, tmp_path / "s", resume=True)
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["steps"] == 3


def test_loss_decreases_on_a_trivial_task(tmp_path):
    """Text rows of one repeated sentence: the all-token loss must fall well below its start in 25 steps."""
    src = tmp_path / "t.txt"
    src.write_text("the cat sat on the mat. " * 200)
    raw = micro_config(steps=25, seed=20260312, lr=1e-2).to_dict()
    raw.pop("source")
    raw["data"] = {"mix": {"text": 1.0}, "local_text": [str(src)], "answer_weight": 0.0}
    out = train_config(config_from_dict(raw), tmp_path / "c").parent
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    first, last = train[0]["lm_ce"], np.mean([r["lm_ce"] for r in train[-3:]])
    assert first > 4.0 and last < 0.5 * first, (first, last)


def test_init_from_loads_weights_and_refuses_other_architectures(tmp_path):
    """model.init_from (a recipe's second part) starts from a checkpoint's weights, same architecture only."""
    import torch
    from ramba import RambaConfig, RambaModel
    from ramba.errors import BadInputError
    from ramba.train.config import config_from_dict
    from ramba.train.run import build_model
    src = RambaModel(RambaConfig.from_preset("tiny", n_lower=1, n_upper=1, n_hsa=1, d_model=64, enc_heads=4,
                                             enc_kv_heads=4, retrieval_dim=64, hsa_heads=2, mamba_headdim=32))
    src.save_pretrained(tmp_path / "ck")
    over = {"n_lower": 1, "n_upper": 1, "n_hsa": 1, "d_model": 64, "enc_heads": 4, "enc_kv_heads": 4,
            "retrieval_dim": 64, "hsa_heads": 2, "mamba_headdim": 32}
    cfg = config_from_dict({"model": {"preset": "tiny", "overrides": over, "init_from": str(tmp_path / "ck")}})
    model, _ = build_model(cfg, torch.device("cpu"))
    for (n, a), b in zip(model.state_dict().items(), src.state_dict().values()):
        assert torch.equal(a, b), n
    other = config_from_dict({"model": {"preset": "tiny", "overrides": {**over, "fusion": "softmax"},
                                        "init_from": str(tmp_path / "ck")}})
    with pytest.raises(BadInputError, match="fusion"):
        build_model(other, torch.device("cpu"))
    # weight-free keys (a sink constant, chunks per query) may change: same weights, another computation
    tuned = config_from_dict({"model": {"preset": "tiny", "overrides": {**over, "topk": 4, "sm_n": 1e16},
                                        "init_from": str(tmp_path / "ck")}})
    model, mcfg = build_model(tuned, torch.device("cpu"))
    assert (mcfg.topk, mcfg.sm_n) == (4, 1e16)
    for (n, a), b in zip(model.state_dict().items(), src.state_dict().values()):
        assert torch.equal(a, b), n
    missing = config_from_dict({"model": {"preset": "tiny", "init_from": str(tmp_path / "nothing")}})
    with pytest.raises(BadInputError, match="first part"):
        build_model(missing, torch.device("cpu"))


def test_trainable_patterns_train_only_the_named_parameters(tmp_path):
    """model.trainable (regexes over parameter names) freezes the rest: after training, the retrieval path has
    moved and every other weight is bit-identical to the start; a pattern that names nothing is refused."""
    from ramba.errors import BadInputError
    raw = micro_config(steps=3, seed=20260314, mix={"ruler_niah": 1.0}, length=256).to_dict()
    raw.pop("source")
    start = train_config(config_from_dict(raw), tmp_path / "start")
    raw["model"]["init_from"] = str(start)
    raw["model"]["trainable"] = [r"^retrieval\.", r"^encoder\.lmk_proj\."]
    raw["data"]["selection_weight"] = 1.0
    out = train_config(config_from_dict(raw), tmp_path / "tuned")
    before, after = _weights(start), _weights(out)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert "retrieval.r_proj.weight" in moved and "encoder.lmk_proj.weight" in moved, moved
    assert all(k.startswith(("retrieval.", "encoder.lmk_proj.")) for k in moved), moved
    summary = json.loads((tmp_path / "tuned" / "summary.json").read_text())
    assert summary["trainable_params"] == sum(before[k].numel() for k in before
                                              if k.startswith(("retrieval.", "encoder.lmk_proj."))) < summary["params"]
    raw["model"]["trainable"] = [r"^no_such_module\."]
    with pytest.raises(BadInputError, match="matches no parameter"):
        train_config(config_from_dict(raw), tmp_path / "bad")
    raw["model"]["trainable"] = "retrieval"
    with pytest.raises(BadInputError, match="list of regular expressions"):
        config_from_dict(raw)


def _micro_forward(kind: str, seed: int, sampler_seed: int, length: int):
    """A micro RAMba, one batch of 4 `kind` rows and its forward -> (model, model config, batch, logits, aux)."""
    from ramba.train.data import RowSampler
    from ramba.train.run import build_model, forward
    torch.manual_seed(seed)
    cfg = micro_config(steps=1, seed=seed, mix={kind: 1.0}, length=length)
    model, mcfg = build_model(cfg, torch.device("cpu"))
    batch = RowSampler({kind: 1.0}, seed=sampler_seed, segment=mcfg.mamba_segment, pool_bytes=1 << 16).batch(
        np.random.default_rng(sampler_seed), 4, length)
    logits, aux = forward(model, batch.ids, mcfg)
    return model, mcfg, batch, logits, aux


def test_retrieval_term_trains_the_selector_toward_the_source_chunk():
    """data.retrieval_weight adds -log(fusion weight on the answer's source chunk): it is finite, it is 0-weighted
    by default (the loss is unchanged), and its gradient reaches the retrieval projection through the weights."""
    from ramba.train.metrics import loss_and_stats, source_chunk_nll
    model, mcfg, batch, logits, aux = _micro_forward("passkey", 20260314, 3, 256)
    nll = source_chunk_nll(batch, aux, mcfg.chunk_size)
    assert nll is not None and torch.isfinite(nll) and float(nll) > 0
    base, _ = loss_and_stats(logits, batch, 8.0, 1.0, aux, mcfg.chunk_size)
    with_ret, stats = loss_and_stats(logits, batch, 8.0, 1.0, aux, mcfg.chunk_size, retrieval_weight=0.5)
    assert torch.allclose(with_ret, base + 0.5 * nll) and stats["retrieval_nll"] == pytest.approx(float(nll))
    nll.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "retrieval" in n and p.grad is not None}
    assert grads and any(float(g.abs().sum()) > 0 for g in grads.values()), "no gradient reached the selector"


def test_selection_term_is_the_source_chunks_rank_against_every_visible_chunk():
    """data.selection_weight adds CE(source chunk | scores of every visible chunk): equal to a naive float64 loop
    over answer targets and KV groups written from the definition, added to the loss with its weight, and its
    gradient reaches both the retrieval projection (queries) and the landmark encoder, selected chunk or not."""
    import math
    from ramba.train.metrics import loss_and_stats, selection_nll
    model, mcfg, batch, logits, aux = _micro_forward("passkey", 20260315, 3, 256)
    nll, top1 = selection_nll(batch, aux, mcfg.chunk_size)
    r, lmk = aux["queries"].double(), aux["landmarks"].double()
    S, terms, wins = mcfg.chunk_size, [], []
    for b in range(batch.ids.shape[0]):
        for t in range(batch.ids.shape[1]):
            src = int(batch.source[b, t])
            if not batch.answer[b, t] or src < 0 or t < (src // S + 1) * S:
                continue
            for h in range(r.shape[2]):
                sc = [float(r[b, t, h] @ lmk[b, c, h]) / math.sqrt(r.shape[-1]) for c in range(t // S)]
                m = max(sc)
                terms.append(m + math.log(sum(math.exp(x - m) for x in sc)) - sc[src // S])
                wins.append(max(range(len(sc)), key=sc.__getitem__) == src // S)
    assert terms, "the batch has no visible copied answer byte"
    assert float(nll) == pytest.approx(sum(terms) / len(terms), rel=1e-4)   # fp32 scores against float64
    assert top1 == pytest.approx(sum(wins) / len(wins))
    base, _ = loss_and_stats(logits, batch, 8.0, 1.0, aux, mcfg.chunk_size)
    with_sel, stats = loss_and_stats(logits, batch, 8.0, 1.0, aux, mcfg.chunk_size, selection_weight=0.5)
    assert torch.allclose(with_sel, base + 0.5 * nll) and stats["selection_nll"] == pytest.approx(float(nll))
    nll.backward()
    got = {n for n, p in model.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
    assert any("retrieval" in n for n in got), "no gradient reached the retrieval queries"
    assert any("encoder" in n or "landmark" in n for n in got), f"no gradient reached the landmarks: {sorted(got)}"


def test_selection_negatives_add_other_rows_and_the_queue_as_wrong_answers():
    """data.selection_negatives: targets of the chosen rows rank their source chunk against their own visible
    chunks, every chunk of the batch's other rows (with gradient) and the queued landmarks; other rows' targets see
    their own chunks only. Equal to a naive float64 loop from that definition; the queue keeps the newest chunks."""
    import math
    from ramba.train.metrics import LandmarkQueue, loss_and_stats, selection_nll
    model, mcfg, batch, logits, aux = _micro_forward("passkey", 20260316, 5, 256)
    r, lmk = aux["queries"].double(), aux["landmarks"].double()
    B, C, H, dr = lmk.shape
    gen = torch.Generator().manual_seed(7)
    queued = torch.randn(5, H, dr, generator=gen)                            # fresh random "earlier" landmarks
    rows = torch.tensor([True, False, True, True])
    nll, top1 = selection_nll(batch, aux, mcfg.chunk_size, negatives=queued, negative_rows=rows)
    S, terms, wins = mcfg.chunk_size, [], []
    for b in range(B):
        for t in range(batch.ids.shape[1]):
            src = int(batch.source[b, t])
            if not batch.answer[b, t] or src < 0 or t < (src // S + 1) * S:
                continue
            for h in range(H):
                own = [float(r[b, t, h] @ lmk[b, c, h]) / math.sqrt(dr) for c in range(t // S)]
                wrong = []
                if rows[b]:
                    wrong = [float(r[b, t, h] @ lmk[o, c, h]) / math.sqrt(dr) for o in range(B) if o != b
                             for c in range(C)]
                    wrong += [float(r[b, t, h] @ queued[m, h].double()) / math.sqrt(dr) for m in range(5)]
                sc = own + wrong
                m = max(sc)
                terms.append(m + math.log(sum(math.exp(x - m) for x in sc)) - own[src // S])
                wins.append(max(range(len(own)), key=own.__getitem__) == src // S)
    assert terms and any(rows[b] for b in range(B))
    assert float(nll) == pytest.approx(sum(terms) / len(terms), rel=1e-4)   # fp32 scores against float64
    assert top1 == pytest.approx(sum(wins) / len(wins))                     # top-1 stays among the row's own
    plain, _ = selection_nll(batch, aux, mcfg.chunk_size)
    assert float(nll) > float(plain)                                        # more wrong answers, higher CE
    _, stats = loss_and_stats(logits, batch, 8.0, 1.0, aux, mcfg.chunk_size, selection_weight=0.5,
                              negatives=queued, negative_rows=rows)
    assert stats["selection_nll_negatives"] == pytest.approx(float(nll))
    assert stats["selection_nll"] == pytest.approx(float(plain))            # the logged own-row CE
    q = LandmarkQueue(3 * C)
    for i in range(4):
        q.push(torch.full((1, C, H, dr), float(i)))
    assert q.get().shape == (3 * C, H, dr) and q.get()[:C].eq(3).all() and q.get()[-C:].eq(1).all()


def test_training_with_selection_negatives_logs_the_larger_ce(tmp_path):
    """The train loop feeds the queue: from the second step the chosen rows rank against earlier chunks too."""
    import json
    raw = micro_config(steps=3, seed=20260317, mix={"passkey": 1.0}, length=256).to_dict()
    raw.pop("source")
    raw["data"].update(selection_weight=0.3, selection_negatives=64, selection_negative_kinds=["passkey"])
    train_config(config_from_dict(raw), tmp_path / "run")
    recs = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in recs if r.get("kind") == "train" and "selection_nll_negatives" in r]
    assert len(steps) == 3 and all(r["selection_nll_negatives"] > r["selection_nll"] for r in steps)


def test_selection_negatives_are_validated():
    from ramba.errors import BadInputError
    raw = micro_config(steps=1, seed=0).to_dict()
    raw.pop("source")
    for bad, msg in [({"selection_negatives": -1, "selection_weight": 0.3}, "selection_negatives must be"),
                     ({"selection_negatives": 64}, "needs data.selection_weight"),
                     ({"selection_negatives": 64, "selection_weight": 0.3, "selection_negative_kinds": ["nope"]},
                      "unknown row kind")]:
        raw2 = {**raw, "data": {**raw["data"], **bad}}
        with pytest.raises(BadInputError, match=msg):
            config_from_dict(raw2)


@pytest.mark.parametrize("key", ["answer_weight", "lm_weight", "retrieval_weight", "selection_weight"])
@pytest.mark.parametrize("bad", ["abc", -1, True])
def test_loss_weights_must_be_non_negative_numbers(key, bad):
    from ramba.errors import BadInputError
    raw = micro_config(steps=1, seed=0).to_dict()
    raw.pop("source")
    raw["data"][key] = bad
    with pytest.raises(BadInputError, match=f"data.{key} must be a number >= 0"):
        config_from_dict(raw)


def test_first_of_copies_marks_the_first_byte_of_each_copied_span():
    from ramba.train.metrics import first_of_copies
    src = torch.tensor([[-1, 10, 11, 12, -1, 40, 41, 7, 8, -1],
                        [5, 6, -1, -1, 9, 9, 10, -1, -1, 3]])
    expect = torch.tensor([[0, 1, 0, 0, 0, 1, 0, 1, 0, 0],
                           [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(first_of_copies(src), expect)


def test_retrieval_term_on_first_bytes_only():
    """data.retrieval_positions: first counts only the byte that starts each copied value (where the selector
    alone must find the source): the mean of -log(weight) over exactly those targets."""
    from ramba.train.metrics import RETRIEVAL_EPS, _source_hits, first_of_copies, source_chunk_nll, split_aux
    _, mcfg, batch, _, aux = _micro_forward("ruler_niah", 5, 4, 1024)
    idx, w = split_aux(aux)
    ok, hit = _source_hits(batch, idx, mcfg.chunk_size)
    first = ok & first_of_copies(batch.source)
    assert 0 < int(first.sum()) < int(ok.sum())
    weight = (w.float() * hit).sum(-1).mean(-1)
    manual = -torch.log(weight[first].clamp(min=RETRIEVAL_EPS)).mean()
    got = source_chunk_nll(batch, aux, mcfg.chunk_size, first_only=True)
    assert torch.allclose(got, manual)
    assert not torch.allclose(got, source_chunk_nll(batch, aux, mcfg.chunk_size))


def test_retrieval_positions_must_be_all_or_first():
    from ramba.errors import BadInputError
    raw = micro_config(steps=1, seed=0).to_dict()
    raw.pop("source")
    raw["data"]["retrieval_positions"] = "last"
    with pytest.raises(BadInputError, match="data.retrieval_positions must be 'all' or 'first'"):
        config_from_dict(raw)


def _side_config(steps, seed, side):
    raw = micro_config(steps=steps, seed=seed, mix={"passkey": 1.0}).to_dict()
    raw.pop("source")
    raw["curriculum"] = [{"until": 1.0, "length": 128, "batch": 2, "side": side}]
    return config_from_dict(raw)


def test_side_rows_join_every_step_and_resume_exactly(tmp_path):
    """A stage's side rows (another length and mix) add their gradient to every step: the weights move away from
    the same run without them, each step logs the side batch's loss, the token count holds both batches, and a
    stopped run resumes to the uninterrupted run's weights (the side rows draw from the same checkpointed rng)."""
    side = {"length": 64, "batch": 1, "mix": {"mqar": 1.0}}
    cfg = _side_config(3, 20260321, side)
    a = train_config(cfg, tmp_path / "a")
    recs = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["kind"] == "train"]
    assert len(train) == 3 and all(np.isfinite(r["side_loss"]) and r["side_loss"] != r["loss"] for r in train)
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["tokens"] == 3 * (2 * 128 + 64)
    plain = train_config(_side_config(3, 20260321, None), tmp_path / "plain")
    wa, wp = _weights(a), _weights(plain)
    assert any(not torch.equal(wa[k], wp[k]) for k in wa)
    train_config(cfg, tmp_path / "b", stop_after=1)
    wb = _weights(train_config(cfg, tmp_path / "b", resume=True))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("side, msg", [({"length": 64}, "batch"), ({"length": 64, "batch": 1, "rows": 2}, "unknown"),
                                       ({"length": 64, "batch": 1, "weight": -1.0}, "positive"),
                                       ({"length": 72, "batch": 1}, "multiple of chunk_size")])
def test_side_rows_are_validated(tmp_path, side, msg):
    from ramba.errors import BadInputError
    with pytest.raises(BadInputError, match=msg):
        train_config(_side_config(1, 0, side), tmp_path / "r")
