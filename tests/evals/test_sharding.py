"""The sharding plan alone: deterministic, longest first, balanced by tokens, every sample exactly once."""
import itertools
import random

import pytest

from ramba.errors import BadInputError
from ramba.evals.sharding import ShardPlan, Work, plan_shards


def _work(lengths):
    return [Work(f"s{i}", n) for i, n in enumerate(lengths)]


def test_every_sample_once_and_the_same_plan_every_time():
    rng = random.Random(0)
    work = _work([rng.choice([1024, 4096, 65536, 1 << 20]) + rng.randrange(8) for _ in range(200)])
    for world in (1, 2, 3, 8):
        plan = plan_shards(work, world)
        ids = [sid for shard in plan.shards for sid in shard]
        assert sorted(ids) == sorted(w.sample_id for w in work) and len(ids) == len(set(ids))
        assert plan == plan_shards(list(work), world)
        assert sum(plan.tokens) == sum(w.tokens for w in work)
        assert ShardPlan.from_dict(plan.to_dict()) == plan


def test_longest_first_and_balanced():
    # A sweep: 8 lengths doubling from 1K, 5 depths x 2 samples each.
    work = [Work(f"L{n}-{j}", n) for n in (1024 << k for k in range(8)) for j in range(10)]
    plan = plan_shards(work, 2)
    for shard in plan.shards:
        costs = [next(w.tokens for w in work if w.sample_id == sid) for sid in shard]
        assert costs == sorted(costs, reverse=True)      # each rank starts with its longest sample
    assert plan.tokens[0] == plan.tokens[1]              # even counts per length split exactly
    assert plan.shards[0][0] == "L131072-0" and plan.shards[1][0] == "L131072-1"


def test_lpt_bound_against_the_best_split():
    rng = random.Random(3)
    for _ in range(30):
        sizes = [rng.randrange(1, 100) for _ in range(9)]
        plan = plan_shards(_work(sizes), 2)
        best = min(max(sum(c), sum(sizes) - sum(c)) for k in range(len(sizes) + 1)
                   for c in itertools.combinations(sizes, k))
        assert max(plan.tokens) <= best * 7 / 6 + 1e-9   # Graham: (4/3 - 1/(3m)) x optimal, m = 2


def test_ties_keep_the_task_order_and_go_to_the_lower_rank():
    plan = plan_shards(_work([5, 5, 5, 5]), 2)
    assert plan.shards == (("s0", "s2"), ("s1", "s3"))
    assert plan_shards([], 3).shards == ((), (), ())
    assert plan_shards(_work([7]), 3).shards == (("s0",), (), ())
    assert plan_shards(_work([1, 1]), 2).imbalance() == 1.0


@pytest.mark.parametrize("world", [0, -1, 1.5, None])
def test_bad_world_size(world):
    with pytest.raises(BadInputError):
        plan_shards(_work([1]), world)


def test_duplicate_ids_refused():
    with pytest.raises(BadInputError, match="twice"):
        plan_shards([Work("a", 1), Work("a", 2)], 2)
