"""The oracle selection probe's forced chunk lists (benchmarks/generalization/oracle_selection_probe.py): only the
answer rows change; 'only_target' holds the queried needle's chunks alone, 'in_topk' adds them to the model's best
other picks, in score order, so the list keeps K entries."""
import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "generalization"


def _probe_module():
    import sys
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("oracle_selection_probe", ROOT / "oracle_selection_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_forced_lists_change_only_the_answer_rows():
    forced = _probe_module().forced
    own = torch.tensor([[7, 5, 3, 1], [7, 5, 3, 1], [8, 6, 4, -1]])                 # [T, K], -1 invalid
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.1, 0.9, 0.5, 0.2], [0.3, 0.2, 0.1, float("-inf")]])
    target = [5, 9]
    only = forced(own, scores, target, slice(1, 3), "only_target")
    assert only.tolist() == [[7, 5, 3, 1], [5, 9, -1, -1], [5, 9, -1, -1]]
    topk = forced(own, scores, target, slice(1, 3), "in_topk")
    assert topk.tolist() == [[7, 5, 3, 1], [5, 9, 3, 1], [5, 9, 8, 6]]
    assert own.tolist()[1] == [7, 5, 3, 1]                                          # the input is not modified
