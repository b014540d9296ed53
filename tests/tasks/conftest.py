"""Fixtures for the task tests: a small local BPE tokenizer (trained here, never downloaded) and a private cache."""
import numpy as np
import pytest

from ramba.tasks.haystack import pseudo_sentences


def _training_text(seed: int, n: int) -> list[str]:
    # Pseudo-English plus digit strings, so digits, punctuation and the template words get merges.
    rng = np.random.default_rng(seed)
    lines = pseudo_sentences(n, seed=seed + 7)
    lines += [f"The pass key is {rng.integers(10**4, 10**7)}. Remember it. What is the secret code? "
              f"The number is {rng.integers(0, 10**5)}." for _ in range(200)]
    return lines


def train_bpe(folder, vocab_size: int, seed: int) -> str:
    """Train a byte-level BPE on generated text and save it as a transformers tokenizer directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_training_text(seed, 800), trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="session")
def hf_tok_dir(tmp_path_factory):
    return train_bpe(tmp_path_factory.mktemp("bpe_tok"), vocab_size=1200, seed=1)


@pytest.fixture(scope="session")
def hf_tok(hf_tok_dir):
    from ramba.tasks import load_tokenizer
    return load_tokenizer(hf_tok_dir)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test writes its samples under its own tmp dir, never the user's ~/.cache."""
    folder = tmp_path / "ramba-cache"
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def bpe_trainer():
    """train_bpe(folder, vocab_size, seed) -> directory, for tests that need a second tokenizer."""
    return train_bpe
