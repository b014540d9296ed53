"""Which rank evaluates which sample: a deterministic plan under which the ranks finish together.

Longest-processing-time first (Graham's LPT greedy): the samples, sorted by cost (prompt + answer tokens) with
the longest first and ties kept in the task's order, each go to the rank with the least cost so far (ties: the
lower rank). LPT's makespan is within 4/3 of the best, and every rank starts with its longest sample, so no
64M-token prompt starts last on a rank that is otherwise done. A rank runs its shard in the order it got it.

Pure Python, no torch, no I/O: the same samples and rank count give the same plan on every machine.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Sequence

from ramba.errors import BadInputError


@dataclass(frozen=True)
class Work:
    sample_id: str
    tokens: int        # cost: prompt tokens + answer tokens


@dataclass(frozen=True)
class ShardPlan:
    world_size: int
    shards: tuple[tuple[str, ...], ...]   # per rank: sample ids in the order that rank runs them
    tokens: tuple[int, ...]               # per rank: total cost

    def rank_of(self) -> dict[str, int]:
        return {sid: r for r, shard in enumerate(self.shards) for sid in shard}

    def imbalance(self) -> float:
        """Largest rank cost over the mean (1.0 = perfectly even; what the slowest rank costs in wall time)."""
        mean = sum(self.tokens) / max(self.world_size, 1)
        return max(self.tokens) / mean if mean else 1.0

    def to_dict(self) -> dict:
        return {"world_size": self.world_size, "tokens": list(self.tokens),
                "shards": [list(s) for s in self.shards]}

    @classmethod
    def from_dict(cls, d: dict) -> "ShardPlan":
        return cls(int(d["world_size"]), tuple(tuple(s) for s in d["shards"]), tuple(int(t) for t in d["tokens"]))


def plan_shards(work: Sequence[Work], world_size: int) -> ShardPlan:
    """LPT greedy over `work` (in the task's order) for `world_size` ranks; ranks may get no sample."""
    if not isinstance(world_size, int) or world_size < 1:
        raise BadInputError(f"world size must be a positive integer, got {world_size!r}")
    seen: set[str] = set()
    for w in work:
        if w.sample_id in seen:
            raise BadInputError(f"sample {w.sample_id!r} is listed twice; sample ids must be unique")
        seen.add(w.sample_id)
    order = sorted(range(len(work)), key=lambda i: (-work[i].tokens, i))
    heap = [(0, r) for r in range(world_size)]   # (cost so far, rank): the cheapest, then the lowest rank
    shards: list[list[str]] = [[] for _ in range(world_size)]
    tokens = [0] * world_size
    for i in order:
        load, r = heapq.heappop(heap)
        shards[r].append(work[i].sample_id)
        tokens[r] = load + work[i].tokens
        heapq.heappush(heap, (tokens[r], r))
    return ShardPlan(world_size, tuple(tuple(s) for s in shards), tuple(tokens))
