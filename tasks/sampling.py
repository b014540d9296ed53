"""Turn a Layout (fixed token pieces placed in a filler) into a Sample with a lazy, cached prompt."""
from __future__ import annotations

from typing import Sequence

from ramba.tasks.assemble import Layout, emit_prompt
from ramba.tasks.base import Sample, make_sample_id, rng_for
from ramba.tasks.cache import prompt_source
from ramba.tasks.haystack import filler_stream
from ramba.tasks.tokenizers import Tokenizer


def layout_sample(*, name: str, config: dict, tokenizer: Tokenizer, length: int, depth: float, seed: int,
                  index: int, layout: Layout, filler: str, answer_text: str, answer_ids: Sequence[int],
                  meta: dict, memory_max_tokens: int) -> Sample:
    """`config` is everything besides (tokenizer, seed, length, depth, index) that determines the ids: it keys
    both the filler RNG and the disk cache. The needle position reported is the first insert's (the queried one
    for multi-needle tasks, which put it first)."""
    where = (name, seed, length, repr(depth), index)
    cfg_items = tuple(f"{k}={config[k]!r}" for k in sorted(config))
    filler_seed = ("filler", *where, *cfg_items)

    def build(emit):
        emit_prompt(layout, filler_stream(filler, tokenizer, rng_for(*filler_seed)), emit)

    fp = tokenizer.fingerprint()
    source = prompt_source(build, length, {**config, "name": name, "tokenizer": fp, "seed": seed,
                                           "length": length, "depth": repr(depth), "index": index},
                           memory_max_tokens)
    positions = layout.positions_in_input_order()
    meta = {**meta, "needle_positions": positions, "filler": filler, "haystack_tokens": layout.filler_tokens,
            "prefix_tokens": len(layout.prefix),
            "question_tokens": len(layout.suffix), "tokenizer": tokenizer.name, "tokenizer_fingerprint": fp[:16]}
    return Sample(task=name, length=length, depth=depth, seed=seed, index=index,
                  sample_id=make_sample_id(name, length, depth, seed, index),
                  answer_ids=tuple(int(t) for t in answer_ids), answer_text=answer_text,
                  needle_token_pos=positions[0] if positions else len(layout.prefix), meta=meta, source=source)
