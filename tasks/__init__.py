"""Task generators and tokenizers: `ramba.tasks`.

Public API (docs/contracts.md): Tokenizer, ByteTokenizer, HFTokenizer, load_tokenizer, Sample, Task, TASKS,
register_task, get_task, list_tasks, derive_seed. Importing this package registers the built-in tasks; it pulls in
numpy only (transformers is imported when an HF tokenizer is loaded).

Task.score(sample, prediction, convention="generated" | "teacher_forced") -> dict with at least
{"convention", "score" in [0, 1], "correct": bool}: prediction is the decoded output text (generated) or the
argmax token id at each answer position, with the answer fed in (teacher_forced).
"""
from ramba.tasks.base import (TASKS, Sample, Task, derive_seed, get_task, list_tasks, make_sample_id,
                              register_task, rng_for)
from ramba.tasks.tokenizers import ByteTokenizer, HFTokenizer, Tokenizer, load_tokenizer
from ramba.tasks import passkey as _passkey  # noqa: F401  (registers "passkey")
from ramba.tasks.passkey import PASSKEY_TEMPLATES, PasskeyTask, passkey_row
from ramba.tasks import niah as _niah  # noqa: F401,E402  (registers the RULER variants: niah_*, vt)
from ramba.tasks import aggregation as _aggregation  # noqa: F401,E402  (registers the RULER variants cwe, fwe)
from ramba.tasks import qa as _qa  # noqa: F401,E402  (registers RULER qa_1 / qa_2 over local SQuAD / HotpotQA files)

__all__ = ["TASKS", "Sample", "Task", "derive_seed", "get_task", "list_tasks", "make_sample_id", "register_task",
           "rng_for", "ByteTokenizer", "HFTokenizer", "Tokenizer", "load_tokenizer", "PASSKEY_TEMPLATES",
           "PasskeyTask", "passkey_row"]
