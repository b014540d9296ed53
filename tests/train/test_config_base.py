"""Training configs with `base:`: a recipe written once and reused with another architecture (the baselines'
recipes are the shipped RAMba's with model overrides)."""
from pathlib import Path

import pytest

from ramba.errors import BadInputError
from ramba.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_base_merges_mappings_and_replaces_the_rest(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "name: a\nseed: 3\nmodel: {preset: tiny, overrides: {arch: ramba, mamba_segment: 512, reset_tail: 352}}\n"
        "data: {mix: {passkey: 0.5, copy: 0.5}, answer_weight: 8.0}\n"
        "curriculum: [{until: 0.5, length: 128, batch: 4}, {until: 1.0, length: 256, batch: 2}]\n")
    (tmp_path / "b.yaml").write_text(
        "base: a.yaml\nname: b\nmodel: {overrides: {arch: mamba2, n_hsa: 0, mamba_segment: null, reset_tail: null}}\n"
        "data: {mix: {copy: 1.0}}\ncurriculum: [{until: 1.0, length: 64, batch: 1}]\n")
    b = load_config(tmp_path / "b.yaml")
    assert b.name == "b" and b.seed == 3                                  # own key wins, base key kept
    assert b.model.overrides == {"arch": "mamba2", "n_hsa": 0, "mamba_segment": None, "reset_tail": None}
    assert b.data.answer_weight == 8.0                                    # mappings merge key by key ...
    assert b.data.mix == {"passkey": 0.5, "copy": 1.0}
    assert [s.length for s in b.curriculum] == [64]                       # ... lists replace


def test_a_base_that_loops_or_is_missing_is_one_clear_error(tmp_path):
    (tmp_path / "x.yaml").write_text("base: y.yaml\nname: x\n")
    (tmp_path / "y.yaml").write_text("base: x.yaml\nname: y\n")
    with pytest.raises(BadInputError, match="loops back"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "z.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(BadInputError, match="not found"):
        load_config(tmp_path / "z.yaml")


def shipped_recipe_parts_with(name):
    """The parts of `name` (configs/<name>{,-ft,-ft2}.yaml, and -p4 where it exists) after checking that each is the shipped
    RAMba's part with only the model changed and starts where the previous part writes; returns
    [(ramba-tiny part, part of name)] as loaded configs."""
    parts = [(load_config(CONFIGS / f"ramba-tiny{s}.yaml"), load_config(CONFIGS / f"{name}{s}.yaml"))
             for s in ("", "-ft", "-ft2", "-p4") if s != "-p4" or (CONFIGS / f"{name}{s}.yaml").is_file()]
    for a, b in parts:
        assert (b.data, b.curriculum, b.optim, b.train, b.seed) == (a.data, a.curriculum, a.optim, a.train, a.seed)
    for (_, prev), (_, part) in zip(parts, parts[1:]):                    # each part starts where the last writes
        assert part.model.init_from == f"runs/{prev.name}/model"
    return parts


@pytest.mark.parametrize("name, arch", [("swa-hsa-tiny", "swa-hsa"), ("mamba2-tiny", "mamba2")])
def test_baseline_recipes_are_the_shipped_recipe_with_another_architecture(name, arch):
    parts = shipped_recipe_parts_with(name)
    assert len(parts) == 4                                                 # part 4 written for the baselines too
    for _, b in parts:
        assert b.model.overrides["arch"] == arch and b.model.overrides["mamba_segment"] is None


def test_the_shipped_part_2_is_the_term_0_arm_of_the_v4ft_ab():
    """The shipped weights were trained as configs/ramba-tiny-v4ft.yaml with data.retrieval_weight=0 (record
    benchmarks/records/train-ramba-tiny-ft/); the recipe that names them must be that run field for field."""
    import dataclasses
    ft, ab = load_config(CONFIGS / "ramba-tiny-ft.yaml"), load_config(CONFIGS / "ramba-tiny-v4ft.yaml")
    ab = dataclasses.replace(ab, name=ft.name, source=ft.source, data=dataclasses.replace(ab.data, retrieval_weight=0.0),
                             model=dataclasses.replace(ab.model, init_from=ft.model.init_from))
    assert ab == ft


@pytest.mark.parametrize("part, run_config, start, pinned_steps", [
    ("ramba-tiny-ft2", "ramba-tiny-v6ft", "runs/ramba-tiny-ft/model", None),    # part 3 (record train-ramba-tiny-ft2/)
    ("ramba-tiny-p4", "ramba-tiny-v7ft", "runs/ramba-tiny-ft2/model", None),    # part 4 (record train-ramba-tiny-p4/)
    # part 5 (record train-ramba-tiny-p5/): from the parts-1-4 average (configs/ramba-tiny-p4.yaml's `--out`); its
    # run was stopped by a wall-clock budget, so the recipe pins the steps that run took instead
    ("ramba-tiny-p5", "ramba-tiny-sel03", "runs/ramba-tiny-avg", 1836),
])
def test_the_shipped_late_parts_are_the_runs_that_made_them(part, run_config, start, pinned_steps):
    """The shipped weights' parts 3-5 were trained as experiment configs from the previous weights; each part's
    recipe is that run but for the name, where the previous weights are and (part 5) the steps pinned."""
    import dataclasses
    recipe, run = load_config(CONFIGS / f"{part}.yaml"), load_config(CONFIGS / f"{run_config}.yaml")
    if pinned_steps is not None:
        assert (recipe.train.max_steps, recipe.train.time_budget_s) == (pinned_steps, None)
        run = dataclasses.replace(run, train=dataclasses.replace(run.train, max_steps=pinned_steps, time_budget_s=None))
    run = dataclasses.replace(run, name=recipe.name, source=recipe.source,
                              model=dataclasses.replace(run.model, init_from=recipe.model.init_from))
    assert run == recipe
    assert recipe.model.init_from == start                               # starts where the previous step writes


def test_the_part_5_steps_are_the_steps_its_run_took():
    import json
    summary = json.loads((CONFIGS.parent / "benchmarks/records/train-ramba-tiny-p5/summary.json").read_text())
    assert summary["steps"] == load_config(CONFIGS / "ramba-tiny-p5.yaml").train.max_steps


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "ci-suite.yaml"),
                         ids=lambda p: p.name)
def test_every_training_recipe_loads(path):
    """Every recipe in configs/ parses and validates, its `base:` chain included (ci-suite.yaml is a run suite)."""
    cfg = load_config(path)
    assert cfg.name and cfg.curriculum


def test_the_wide_candidate_is_the_shipped_recipe_with_a_wider_model():
    """configs/ramba-wide*.yaml (issue 9 capacity candidate) change the model's width only, part by part."""
    for a, b in shipped_recipe_parts_with("ramba-wide"):
        assert {**a.model.overrides, "d_model": 384, "hsa_heads": 12, "retrieval_dim": 384} == b.model.overrides
