"""Both scoring conventions from ONE prefill.

After the prompt, feed the answer teacher-forced while recording the argmax at each answer position. Greedy
generation takes exactly the same path until the first mismatch (each fed token equals the argmax), so from
that position on we feed the model's own prediction instead: the remaining steps are greedy generation. One
pass therefore yields the full greedy output (`generated`) and the teacher-forced argmaxes up to and including
the first mismatch, which is all teacher-forced exact match needs (one wrong position decides it).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OnePass:
    generated: tuple[int, ...]        # greedy tokens, len == len(answer) + extra
    teacher_forced: tuple[int, ...]   # argmax at answer positions up to and including the first mismatch
    first_mismatch: int | None        # answer position of the first wrong argmax; None = all right

    @property
    def teacher_forced_correct(self) -> bool:
        return self.first_mismatch is None


def task_budget(sample) -> int:
    """The task's own generation budget for a sample (RULER's tokens_to_generate: meta max_new_tokens), never
    shorter than its answer: what `gen_tokens: task` decodes."""
    return max(len(sample.answer_ids), int(sample.meta.get("max_new_tokens", 0)))


def one_pass(backend, first_logits, answer_ids, extra: int = 0) -> OnePass:
    """first_logits: [V] logits after the last prompt token (what backend.consume returned). `extra` more greedy
    tokens are decoded after the answer's length (a task's own generation budget); teacher forcing is unchanged."""
    if len(answer_ids) == 0:
        raise ValueError("a sample needs at least one answer token")
    logits = first_logits
    generated: list[int] = []
    mismatch: int | None = None
    for i, truth in enumerate(answer_ids):
        pred = int(logits.argmax())
        generated.append(pred)
        if mismatch is None and pred != int(truth):
            mismatch = i
        if i + 1 < len(answer_ids):
            # Before the first mismatch pred == truth, so feeding pred is both teacher forcing and greedy decoding.
            logits = backend.step(pred if mismatch is not None else int(truth))
    tf = generated if mismatch is None else generated[: mismatch + 1]
    for _ in range(max(0, int(extra))):
        # the state holds the prompt + generated[:-1] (fed truth == pred before the mismatch): greedy from here
        generated.append(int(backend.step(generated[-1]).argmax()))
    return OnePass(tuple(generated), tuple(tf), mismatch)


def decode_safely(tokenizer, ids) -> tuple[str, int]:
    """(text, number of ids outside the tokenizer's vocabulary). A model whose vocabulary is larger than the
    tokenizer's (a 50K-id preset read with the 256-id byte tokenizer) can predict ids that decode to nothing:
    each such id is shown as `<id N?>` and the caller scores the prediction wrong, instead of aborting the run."""
    vocab = int(tokenizer.vocab_size)
    parts: list[str] = []
    run: list[int] = []
    bad = 0
    for i in ids:
        i = int(i)
        if 0 <= i < vocab:
            run.append(i)
            continue
        if run:
            parts.append(tokenizer.decode(run))
            run = []
        parts.append(f"<id {i}?>")
        bad += 1
    if run:
        parts.append(tokenizer.decode(run))
    return "".join(parts), bad
