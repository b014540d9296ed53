"""One prefill gives both conventions: check the tokens fed after the prompt against a scripted model."""
import random

import torch

from ramba.evals.scoring import one_pass

V = 50


class Scripted:
    """Predicts script[i] after i answer-phase steps; records what the runner feeds it."""

    def __init__(self, script):
        self.script, self.fed = script, []

    def logits(self, i):
        x = torch.randn(V)
        x[self.script[i]] = x.abs().max() + 1.0  # the scripted token is the argmax
        return x

    def step(self, token):
        self.fed.append(token)
        return self.logits(len(self.fed))


def test_all_right_is_teacher_forced_and_greedy():
    rng = random.Random(0)
    answer = [rng.randrange(V) for _ in range(6)]
    m = Scripted(answer)
    op = one_pass(m, m.logits(0), answer)
    assert op.generated == tuple(answer) and op.teacher_forced == tuple(answer)
    assert op.first_mismatch is None and op.teacher_forced_correct
    assert m.fed == answer[:-1]  # the answer is fed teacher-forced; the last answer token is never fed


def test_after_first_mismatch_feeds_own_predictions():
    rng = random.Random(1)
    answer = [rng.randrange(V) for _ in range(6)]
    script = list(answer)
    script[2] = (answer[2] + 1) % V                    # wrong at position 2
    script[3:] = [(a + 7) % V for a in answer[3:]]     # and the model's own continuation differs too
    m = Scripted(script)
    op = one_pass(m, m.logits(0), answer)
    assert op.first_mismatch == 2 and not op.teacher_forced_correct
    assert op.generated == tuple(script)               # full greedy decode
    assert op.teacher_forced == tuple(script[:3])      # argmaxes up to and including the mismatch
    # truth before the mismatch, then the model's own tokens: exactly what greedy decoding would feed
    assert m.fed == answer[:2] + script[2:5]


def test_extra_tokens_continue_greedy_and_leave_teacher_forcing_alone():
    """gen_tokens "task": a model that writes a preamble before the value (" is 123") is scored on the task's
    whole budget; the extra tokens are greedy continuations fed from the model's own last prediction."""
    rng = random.Random(2)
    answer = [rng.randrange(V) for _ in range(4)]
    script = [(a + 3) % V for a in answer] + [rng.randrange(V) for _ in range(5)]   # wrong from the start
    m = Scripted(script)
    op = one_pass(m, m.logits(0), answer, extra=5)
    assert op.generated == tuple(script)               # len(answer) + 5 greedy tokens
    assert op.teacher_forced == tuple(script[:1]) and op.first_mismatch == 0
    assert m.fed == script[:-1]                        # every generated token but the last was fed back
    m2 = Scripted(script)
    assert one_pass(m2, m2.logits(0), answer).generated == tuple(script[:4])   # extra=0: the answer's length
