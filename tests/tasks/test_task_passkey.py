import numpy as np
import pytest

from ramba.errors import BadInputError, DoesNotFitError
from ramba.tasks import ByteTokenizer, PASSKEY_TEMPLATES, PasskeyTask, get_task, list_tasks, passkey_row

TPL = PASSKEY_TEMPLATES[0]


def tokenizer_for(kind, hf_tok):
    return ByteTokenizer() if kind == "byte" else hf_tok


def check_structure(sample, tok, ids):
    """The prompt is filler + needle + filler + question, with the needle where the sample says it is."""
    key = sample.meta["key"]
    needle = tok.encode(TPL.needle.format(key=key))
    question = tok.encode(TPL.question)
    pos = sample.needle_token_pos
    assert ids[pos:pos + len(needle)].tolist() == needle
    assert ids[len(ids) - len(question):].tolist() == question
    assert list(sample.answer_ids) == tok.encode(f" {key}") and sample.answer_text == f" {key}"
    filler = sample.length - len(needle) - len(question)
    assert sample.meta["haystack_tokens"] == filler
    # depth is a fraction of the filler: the needle starts within one token of depth * filler
    assert abs(pos - sample.depth * filler) <= 1.0
    assert ids.min() >= 0 and ids.max() < tok.vocab_size


@pytest.mark.parametrize("kind", ["byte", "hf"])
@pytest.mark.parametrize("length", [1024, 4096, 65536, 1 << 20])
def test_exact_length(kind, length, hf_tok):
    tok = tokenizer_for(kind, hf_tok)
    rng = np.random.default_rng(length)            # a fresh depth and seed per case, reproducible
    depth, seed = float(rng.random()), int(rng.integers(0, 2**31))
    (s,) = list(get_task("passkey").generate([length], [depth], 1, seed, tok))
    chunks = list(s.prompt_chunks(chunk_tokens=300_001))
    assert all(c.dtype == np.int32 and c.ndim == 1 for c in chunks)
    assert sum(len(c) for c in chunks) == length == s.prompt_length == s.length
    ids = np.concatenate(chunks)
    assert np.array_equal(ids, s.prompt_ids())
    check_structure(s, tok, ids)
    assert len(s.meta["key"]) == 5 and s.meta["key"] in tok.decode(ids[s.needle_token_pos:][:200].tolist())


@pytest.mark.parametrize("depth", [0.0, 0.1, 0.5, 0.77, 1.0])
def test_needle_depth(depth, hf_tok):
    for tok in (ByteTokenizer(), hf_tok):
        (s,) = list(get_task("passkey").generate([3000], [depth], 1, 5, tok))
        ids = s.prompt_ids()
        check_structure(s, tok, ids)
        if depth == 0.0:
            assert s.needle_token_pos == 0
        if depth == 1.0:   # right before the question
            assert s.needle_token_pos + s.meta["needle_tokens"] == 3000 - s.meta["question_tokens"]


def test_deterministic_and_seed_sensitive(hf_tok):
    task = get_task("passkey")
    for tok in (ByteTokenizer(), hf_tok):
        a = list(task.generate([2048, 5000], [0.3, 0.9], 2, 17, tok))
        b = list(task.generate([2048, 5000], [0.3, 0.9], 2, 17, tok))
        c = list(task.generate([2048, 5000], [0.3, 0.9], 2, 18, tok))
        assert [s.sample_id for s in a] == [s.sample_id for s in b]
        assert a[0].sample_id == "passkey-L2048-d0.3000-s17-i0"
        for x, y, z in zip(a, b, c):
            assert x == y and np.array_equal(x.prompt_ids(), y.prompt_ids())
            assert not np.array_equal(x.prompt_ids(), z.prompt_ids())
        # each (length, depth, index) gets its own key and filler
        assert len({s.meta["key"] for s in a}) == len(a)
        assert not np.array_equal(a[0].prompt_ids()[:1000], a[1].prompt_ids()[:1000])


def test_filler_not_periodic(hf_tok):
    for tok in (ByteTokenizer(), hf_tok):
        (s,) = list(get_task("passkey").generate([40_000], [0.5], 1, 3, tok))
        f = s.prompt_ids()[:32_768]
        # A periodic filler (one repeated sentence or a short cycle of them) matches itself ~100% at its period;
        # i.i.d. sentences from a 4096-sentence pool match only at the rate of equal unigrams (< 10% for
        # English-like bytes and BPE ids), so 0.3 leaves a wide margin on both sides.
        worst = max(np.mean(f[:-p] == f[p:]) for p in range(1, 2049))
        assert worst < 0.3, worst
        periodic = np.tile(f[:97], 400)
        assert max(np.mean(periodic[:-p] == periodic[p:]) for p in range(1, 2049)) > 0.99  # the check can fail


def test_bad_inputs(hf_tok):
    task = get_task("passkey")
    tok = ByteTokenizer()
    (s,) = list(task.generate([500], [0.5], 1, 0, tok))
    minimum = s.meta["needle_tokens"] + s.meta["question_tokens"]
    assert len(list(task.generate([minimum], [0.5], 1, 0, tok))[0].prompt_ids()) == minimum
    with pytest.raises(DoesNotFitError, match=f">= {minimum}"):
        list(task.generate([minimum - 1], [0.5], 1, 0, tok))
    for depth in (-0.01, 1.01, float("nan"), float("inf")):
        with pytest.raises(BadInputError, match=r"outside \[0, 1\]"):
            task.generate([1000], [depth], 1, 0, tok)      # eager: raises before any sample is built
    with pytest.raises(BadInputError, match="same to 4 decimals"):
        task.generate([1000], [0.5, 0.50001], 1, 0, tok)
    for lengths in ([0], [-5], [1.5], [], [1000, 1000]):
        with pytest.raises(BadInputError):
            task.generate(lengths, [0.5], 1, 0, tok)
    for n in (0, -1, 2.0):
        with pytest.raises(BadInputError, match="samples"):
            task.generate([1000], [0.5], n, 0, tok)
    with pytest.raises(BadInputError, match="unknown task 'passkee'.*passkey"):
        get_task("passkee")
    with pytest.raises(BadInputError, match="chunk_tokens"):
        next(s.prompt_chunks(0))
    with pytest.raises(BadInputError, match="template"):
        PasskeyTask(template=len(PASSKEY_TEMPLATES))
    with pytest.raises(BadInputError, match="filler"):
        PasskeyTask(filler="lorem")


def test_scoring_conventions():
    rng = np.random.default_rng(21)
    task = get_task("passkey")
    tok = ByteTokenizer()
    for s in task.generate([700, 900], [0.2, 0.6], 2, int(rng.integers(1000)), tok):
        key = s.meta["key"]
        noise = "".join(rng.choice(list("abc xyz.,"), size=12))
        ok = task.score(s, f"{noise} {key}. And 12345 more")
        assert ok["correct"] and ok["score"] == 1.0 and ok["convention"] == "generated" and ok["pred"] == key
        wrong_digit = str((int(key[-1]) + 1) % 10)
        assert not task.score(s, f"{noise}{key[:-1]}{wrong_digit}")["correct"]
        assert not task.score(s, f" {key}7")["correct"]          # a longer number is not the key
        assert task.score(s, noise.replace("1", ""))["pred"] is None
        tf = task.score(s, list(s.answer_ids), convention="teacher_forced")
        assert tf["correct"] and tf["positions_correct"] == 1.0 and tf["convention"] == "teacher_forced"
        bad = list(s.answer_ids)
        j = int(rng.integers(len(bad)))
        bad[j] = (bad[j] + 1) % 256
        tf = task.score(s, bad, convention="teacher_forced")
        assert not tf["correct"] and tf["positions_correct"] == pytest.approx(1 - 1 / len(bad))
    with pytest.raises(BadInputError, match="one argmax per answer token"):
        task.score(s, list(s.answer_ids)[:-1], convention="teacher_forced")
    with pytest.raises(BadInputError, match="convention"):
        task.score(s, "1", convention="fuzzy")
    with pytest.raises(BadInputError):
        task.score(s, "12345", convention="teacher_forced")


@pytest.mark.parametrize("filler", ["sentences", "noise", "zipf"])
def test_passkey_row(filler, hf_tok):
    for tok in (ByteTokenizer(), hf_tok):
        for template in range(len(PASSKEY_TEMPLATES)):
            rng = np.random.default_rng([template, len(filler)])
            ids, start = passkey_row(rng, 1500, None, tok, key_digits=7, filler=filler, template=template)
            assert ids.dtype == np.int64 and start == 1500
            answer = tok.decode(ids[start:].tolist())
            key = answer.strip()
            assert answer == f" {key}" and len(key) == 7 and key.isdigit()
            # the needle (with the key) is inside the prompt, and the prompt ends with the template's question
            assert key in tok.decode(ids[:start].tolist())
            q = tok.encode(PASSKEY_TEMPLATES[template].question)
            assert ids[start - len(q):start].tolist() == q
            again, _ = passkey_row(np.random.default_rng([template, len(filler)]), 1500, None, tok,
                                   key_digits=7, filler=filler, template=template)
            assert np.array_equal(ids, again)
    with pytest.raises(BadInputError, match="filler"):
        passkey_row(np.random.default_rng(0), 500, 0.5, ByteTokenizer(), filler="essay")
    with pytest.raises(DoesNotFitError):
        passkey_row(np.random.default_rng(0), 20, 0.5, ByteTokenizer())


@pytest.mark.parametrize("kind", ["letters", "hex"])
def test_passkey_row_key_kinds(kind, hf_tok):
    from ramba.tasks.passkey import KEY_ALPHABETS
    for tok in (ByteTokenizer(), hf_tok):
        ids, start = passkey_row(np.random.default_rng(len(kind)), 800, 0.3, tok, key_digits=6, key_kind=kind)
        key = tok.decode(ids[start:].tolist()).strip()
        assert len(key) == 6 and set(key) <= set(KEY_ALPHABETS[kind]) and key in tok.decode(ids[:start].tolist())
    with pytest.raises(BadInputError, match="key_kind"):
        passkey_row(np.random.default_rng(0), 800, 0.3, ByteTokenizer(), key_kind="emoji")


def test_fillers_differ():
    tok = ByteTokenizer()
    rows = {f: passkey_row(np.random.default_rng(4), 2000, 0.5, tok, filler=f)[0]
            for f in ("sentences", "noise", "zipf")}
    assert not np.array_equal(rows["sentences"], rows["noise"])
    assert not np.array_equal(rows["sentences"], rows["zipf"])


def test_list_tasks():
    names = dict(list_tasks())
    assert "passkey" in names and names["passkey"]


def test_exact_length_sentencepiece_style_tokenizer(tmp_path):
    """A Unigram + Metaspace tokenizer (SentencePiece style, '▁' marks spaces) also gets exact lengths."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from ramba.tasks import load_tokenizer
    from ramba.tasks.haystack import pseudo_sentences

    rng = np.random.default_rng(51)
    text = pseudo_sentences(600, seed=99) + [f"The pass key is {int(x)}." for x in rng.integers(10**4, 10**5, 100)]
    sp = Tokenizer(models.Unigram())
    sp.pre_tokenizer = pre_tokenizers.Metaspace()
    sp.decoder = decoders.Metaspace()
    sp.train_from_iterator(text, trainers.UnigramTrainer(vocab_size=600, show_progress=False, unk_token="<unk>",
                                                         special_tokens=["<unk>"]))
    sp.save(str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(str(tmp_path / "tokenizer.json"))
    task = PasskeyTask(memory_max_tokens=50_000)
    for length in (3000, 70_000):
        (s,) = list(task.generate([length], [float(rng.random())], 1, 8, tok))
        ids = np.concatenate(list(s.prompt_chunks(4096)))
        assert len(ids) == length
        check_structure(s, tok, ids)
