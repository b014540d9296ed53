"""Wordings of the RULER-family prompts, split into a *train* bank and a *held-out* bank.

Training rows (ramba.train.data) draw needle/question wordings from `TRAIN` only; the evaluation tasks use the
standard wording of variants.yaml (which is also in `TRAIN`: the model is tuned on the RULER format, as the
paper's RULER SFT is), and `templates: heldout` variants draw from `HELDOUT`, whose label phrases and sentence
frames never occur in training. So a held-out score measures retrieval cued by the key, not by a memorised phrase.

A template is a dict of format strings with the fields of variants.yaml's `niah` block ({type_v} = "number" or
"uuid"; {key}, {value}, {query}); `label` phrases may contain {type_v}.
"""
from __future__ import annotations

import functools

import numpy as np

# Label phrases ("special magic {type_v}"): what the needle calls its value.
TRAIN_LABELS = (
    "special magic {type_v}", "magic {type_v}", "secret {type_v}", "hidden {type_v}", "lucky {type_v}",
    "reference {type_v}", "assigned {type_v}", "private {type_v}", "registered {type_v}", "special {type_v}",
    "personal {type_v}", "important {type_v}", "pass {type_v}", "stored {type_v}", "chosen {type_v}",
)
# Bank 2 (the second training part) adds these wordings to the train bank; the held-out bank is the same.
EXTRA_LABELS = (
    "backup {type_v}", "primary {type_v}", "official {type_v}", "unique {type_v}", "serial {type_v}",
    "access {type_v}", "control {type_v}", "account {type_v}", "ticket {type_v}", "key {type_v}",
)
HELDOUT_LABELS = ("confidential {type_v}", "vault {type_v}", "archived {type_v}", "treasured {type_v}")

# Needle frames: {L} label, {key}, {value}. The first train frame is the standard (variants.yaml) wording.
TRAIN_NEEDLES = (
    " One of the {L}s for {key} is: {value}.",
    " The {L} for {key} is {value}.",
    " The {L} of {key} is: {value}.",
    " For {key}, the {L} is {value}.",
    " Note that the {L} for {key} is {value}.",
    " {key} has the {L} {value}.",
    " Here is a {L} for {key}: {value}.",
)
EXTRA_NEEDLES = (
    " {key}: {L} = {value}.",
    " Keep in mind: {key} -> {L} {value}.",
    " The {L} assigned to {key} is {value}.",
    " In the records, {key} is listed with the {L} {value}.",
    " Write down the {L} for {key}, which is {value}.",
    " A {L} for {key} was noted: {value}.",
)
HELDOUT_NEEDLES = (
    " Remember, the {L} belonging to {key} reads {value}.",
    " It is recorded that {key} owns the {L} {value}.",
)

# Question frames (one value asked / several asked): {L}, {query}.
TRAIN_QUESTIONS_ONE = (
    "\nWhat is the {L} for {query} mentioned in the text? The {L} for {query} mentioned in the text is",
    "\nWhat is the {L} of {query}? The {L} of {query} is",
    "\nQuestion: which {L} does {query} have? Answer: the {L} of {query} is",
    "\nFind the {L} for {query} in the text above. The {L} for {query} is",
)
TRAIN_QUESTIONS_MANY = (
    "\nWhat are all the {L}s for {query} mentioned in the text? The {L}s for {query} mentioned in the text are",
    "\nWhat are the {L}s of {query}? The {L}s of {query} are",
    "\nQuestion: which {L}s do {query} have? Answer: the {L}s of {query} are",
    "\nFind every {L} for {query} in the text above. The {L}s for {query} are",
)
EXTRA_QUESTIONS_ONE = (
    "\nWhich {L} was given for {query}? It is",
    "\nRecall the {L} for {query}. The {L} for {query} is",
    "\nQ: {L} of {query}? A:",
    "\nWhat {L} is listed for {query}? The {L} listed for {query} is",
)
EXTRA_QUESTIONS_MANY = (
    "\nWhich {L}s were given for {query}? They are",
    "\nRecall the {L}s for {query}. The {L}s for {query} are",
    "\nQ: {L}s of {query}? A:",
    "\nWhat {L}s are listed for {query}? The {L}s listed for {query} are",
)
HELDOUT_QUESTIONS_ONE = (
    "\nTell me the {L} that belongs to {query}. The {L} that belongs to {query} reads",
)
HELDOUT_QUESTIONS_MANY = (
    "\nTell me all the {L}s that belong to {query}. The {L}s that belong to {query} read",
)

# A second held-out bank (issue 9, written 2026-12-03 before any training change after the first bank was
# diagnosed down to its question frame, benchmarks/records/generalization/gpu-h200/part10-open-cues/): labels,
# frames and answer cues training never sees, so held-out results stay a test of generalisation.
HELDOUT2_LABELS = ("sealed {type_v}", "encrypted {type_v}", "emergency {type_v}", "winning {type_v}")
HELDOUT2_NEEDLES = (
    " Attention: {key} was handed the {L} {value} this morning.",
    " Somewhere it says that the {L} of {key} happens to be {value}.",
)
HELDOUT2_QUESTIONS_ONE = (
    "\nCan you recall which {L} {query} was handed? Certainly: {query} was handed the {L}",
    "\nPlease provide the {L} of {query}. Certainly, the {L} of {query} happens to be",
)
HELDOUT2_QUESTIONS_MANY = (
    "\nCan you recall which {L}s {query} was handed? Certainly: {query} was handed the {L}s",
    "\nPlease provide all {L}s of {query}. Certainly, the {L}s of {query} happen to be",
)

# Variable tracking: statement and question wordings ({var}, {value}, {prev}, {count}).
TRAIN_VT = (
    {"first": " VAR {var} = {value}.", "hop": " VAR {var} = VAR {prev}.",
     "question": "\nWhich variables are assigned the value {value} in the text above? Answer: following the chains "
                 "of assignments, {count} variables are assigned the value {value}, they are:"},
    {"first": " VAR {var} = {value}.", "hop": " VAR {var} = VAR {prev}.",
     "question": "\nList the variables whose value is {value}. Answer: the {count} variables with the value {value} "
                 "are:"},
    {"first": " let {var} = {value};", "hop": " let {var} = {prev};",
     "question": "\nWhich names end up holding {value}? Answer: {count} names hold {value}, they are:"},
    {"first": " set {var} to {value}.", "hop": " set {var} to {prev}.",
     "question": "\nWhich variables are equal to {value}? Answer: the {count} variables equal to {value} are:"},
)
EXTRA_VT = (
    {"first": " {var} := {value}.", "hop": " {var} := {prev}.",
     "question": "\nWhat are the variables holding {value}? Answer: these {count} variables hold {value}:"},
    {"first": " assign {value} to {var}.", "hop": " assign {prev} to {var}.",
     "question": "\nWhich variables received {value}? Answer: {count} variables received {value}:"},
)
HELDOUT_VT = (
    {"first": " Variable {var} takes {value}.", "hop": " Variable {var} takes {prev}.",
     "question": "\nName every variable that ends up with {value}. Answer: {count} variables end up with {value}, "
                 "namely:"},
)

HELDOUT2_VT = (
    {"first": " Put {value} into {var}.", "hop": " Put {prev} into {var}.",
     "question": "\nWhich variables contain {value} in the end? Answer: {count} variables contain {value}, which are:"},
)
# Each held-out split's NIAH parts (labels, needles, questions one / many) and VT wordings.
_HELDOUT_NIAH = {"heldout": (HELDOUT_LABELS, HELDOUT_NEEDLES, HELDOUT_QUESTIONS_ONE, HELDOUT_QUESTIONS_MANY),
                 "heldout2": (HELDOUT2_LABELS, HELDOUT2_NEEDLES, HELDOUT2_QUESTIONS_ONE, HELDOUT2_QUESTIONS_MANY)}
_HELDOUT_VT = {"heldout": HELDOUT_VT, "heldout2": HELDOUT2_VT}
HELDOUT_SPLITS = tuple(_HELDOUT_NIAH)     # the `templates` values of the held-out variants


def _niah_template(rng: np.random.Generator, labels, needles, ones, manys, type_v: str) -> dict:
    label = labels[int(rng.integers(len(labels)))].format(type_v=type_v)
    ni = int(rng.integers(len(needles)))
    qi = int(rng.integers(len(ones)))
    fill = lambda t: t.replace("{L}", label)                       # noqa: E731 - keeps {key}/{value} for later
    return {"label": label, "needle": fill(needles[ni]), "question_one": fill(ones[qi]),
            "question_many": fill(manys[qi % len(manys)])}


def draw_niah_template(rng: np.random.Generator, split: str, type_v: str, bank: int = 1) -> dict:
    """A needle/question wording for `split` ("train", "heldout" or "heldout2"); type_v is "number" or "uuid".
    bank 2 widens the train split with the EXTRA_* wordings; bank 3 draws half of its wordings procedurally
    (procedural_niah_template) and the other half from bank 2; bank 4 is bank 3 with wider answer cues
    (_WIDE_CUES); bank 5 is bank 4 with open cues (open_cue: pseudo-words and more verbs, in the question's answer
    cue and the needle's verb). Held-out wordings are the same in every bank."""
    if split == "train":
        if bank >= 3 and rng.random() < PROCEDURAL_SHARE:
            return procedural_niah_template(rng, type_v, wide_cues=bank >= 4, open_cues=bank >= 5)
        if bank >= 2:
            return _niah_template(rng, TRAIN_LABELS + EXTRA_LABELS, TRAIN_NEEDLES + EXTRA_NEEDLES,
                                  TRAIN_QUESTIONS_ONE + EXTRA_QUESTIONS_ONE, TRAIN_QUESTIONS_MANY + EXTRA_QUESTIONS_MANY,
                                  type_v)
        return _niah_template(rng, TRAIN_LABELS, TRAIN_NEEDLES, TRAIN_QUESTIONS_ONE, TRAIN_QUESTIONS_MANY, type_v)
    if split in _HELDOUT_NIAH:
        return _niah_template(rng, *_HELDOUT_NIAH[split], type_v)
    raise ValueError(f"unknown template split {split!r}")


def draw_vt_template(rng: np.random.Generator, split: str, bank: int = 1) -> dict:
    if split == "train" and bank >= 3 and rng.random() < PROCEDURAL_SHARE:
        return procedural_vt_template(rng)
    pool = TRAIN_VT + (EXTRA_VT if bank >= 2 else ()) if split == "train" else _HELDOUT_VT[split]
    return dict(pool[int(rng.integers(len(pool)))])


# ---------------------------------------------------------------- bank 3: procedural wordings
# Labels, frames and questions assembled from parts and from random pseudo-words, so that no phrase is frequent
# enough to be memorised: the only reliable cue left is the key itself (and the value's shape). None of the parts
# contains a held-out phrase (tests check the rows).
PROCEDURAL_SHARE = 0.5
_ADJ = ("special", "magic", "secret", "hidden", "lucky", "reference", "assigned", "private", "registered", "personal",
        "important", "stored", "chosen", "backup", "primary", "official", "unique", "serial", "access", "control",
        "account", "ticket", "key", "main", "final", "current", "spare", "daily", "test", "master", "old", "new",
        "true", "exact", "given", "listed", "noted", "short", "long", "random", "fixed", "local", "global", "core")
_NOUNS = ("number", "code", "value", "id", "figure", "tag", "pin", "token", "string", "label", "entry", "mark")
_PREPS = ("for", "of", "given to", "linked to", "tied to", "attached to", "kept for", "used by", "meant for",
          "set for", "issued to", "listed for", "assigned to", "made for", "about")
_VERBS = ("is", "is:", "=", ":", "was", "equals", "is set to", "is just", "would be", "is given as", "->")
_OPENERS = ("", "", "", "Note: ", "By the way, ", "Also, ", "In short, ", "FYI: ", "Please note that ", "Fact: ",
            "Important: ", "Log entry: ", "Reminder: ", "Today, ", "Meanwhile, ")
_Q_OPENERS = ("What is", "Which is", "Give", "Name", "State", "Report", "Recall", "Find", "Look up", "Retrieve",
              "Quote", "Repeat", "Tell me")
_Q_OPENERS_MANY = ("What are", "Which are", "Give", "Name", "State", "Report", "Recall", "Find", "Look up", "List",
                   "Retrieve", "Quote", "Repeat", "Tell me")
_SYLLABLES = ("ka", "lo", "mi", "zu", "ter", "van", "qui", "rop", "sel", "dax", "fen", "gor", "hul", "jin", "wex",
              "bri", "cor", "nim", "pla", "sto", "tru", "ynd", "ox", "el", "ar", "um", "is", "zel", "mor", "tak")


def pseudo_word(rng: np.random.Generator, lo: int = 2, hi: int = 3) -> str:
    return "".join(_SYLLABLES[int(rng.integers(len(_SYLLABLES)))] for _ in range(int(rng.integers(lo, hi + 1))))


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


# Bank 4's extra answer cues: the question ends in "... {query} <cue>" with cues beyond "is"/"Answer:"/"->", so the
# answer position is not tied to one phrase (the held-out cue " reads" is never among them: heldout_phrases()).
_WIDE_CUES = ("was", "equals", "shows", "says", "comes to", "stands at", "is listed as", "gives", "=", "is set to",
              "turns out to be", "would be", "is noted as", "matches", "appears as")


# Bank 5's open cues. The wording ablation (benchmarks/records/generalization/cpu/wording-ablation/) found held-out
# retrieval breaking at the answer cue: after the unseen word " reads" the model continues the word instead of
# answering. A cue drawn from a large open set (a pseudo-word half the time) leaves "the word after the restated
# query" as the only answer signal, whatever that word is. None of these is a held-out phrase (tests check rows).
_OPEN_VERBS = ("shows", "lists", "states", "holds", "carries", "displays", "marks", "notes", "spells", "yields",
               "returns", "indicates", "gives back", "comes out as", "is written as", "is stored as", "is kept as",
               "maps to", "points to", "resolves to", "evaluates to", "amounts to", "translates to", "runs")


def open_cue(rng: np.random.Generator) -> str:
    """An answer cue from bank 5's open set: a pseudo-word (half), a bank-4 cue or one of _OPEN_VERBS."""
    u = rng.random()
    if u < 0.5:
        return pseudo_word(rng, 1, 3)
    return _pick(rng, _WIDE_CUES) if u < 0.7 else _pick(rng, _OPEN_VERBS)


def procedural_niah_template(rng: np.random.Generator, type_v: str, wide_cues: bool = False,
                             open_cues: bool = False) -> dict:
    """A NIAH wording assembled at random: label (words or pseudo-words), needle frame, question frame.
    wide_cues (bank 4): half of the questions end in one of _WIDE_CUES instead of the bank-3 leads.
    open_cues (bank 5): 80% of the questions end in an open_cue, and half of the needles' verbs are one."""
    noun = type_v if rng.random() < 0.4 else _pick(rng, _NOUNS)
    u = rng.random()
    adj = _pick(rng, _ADJ) if u < 0.45 else (pseudo_word(rng) if u < 0.8 else f"{_pick(rng, _ADJ)} {pseudo_word(rng)}")
    label = f"{adj} {noun}"
    prep, verb, opener = _pick(rng, _PREPS), _pick(rng, _VERBS), _pick(rng, _OPENERS)
    if open_cues and rng.random() < 0.5:
        verb = open_cue(rng)
    the = "the" if opener else "The"
    f = rng.random()
    if f < 0.55:
        needle = f" {opener}{the} {label} {prep} {{key}} {verb} {{value}}."
    elif f < 0.8:
        needle = f" {opener}{{key}} {_pick(rng, ('has', 'got', 'uses', 'was given', 'holds', 'keeps'))} the {label} {{value}}."
    else:                                                 # pseudo-word glue: no natural phrase at all
        needle = f" {pseudo_word(rng)} {label} {pseudo_word(rng, 1, 2)} {{key}} {pseudo_word(rng, 1, 2)} {{value}}."
    q_prep = prep if rng.random() < 0.7 else _pick(rng, _PREPS)
    lead_one = _pick(rng, (f" The {label} {q_prep} {{query}} is", " Answer:", " It is", f" The {label} is",
                           f" {{query}} -> {label}:", f" Sure, the {label} {q_prep} {{query}} is"))
    lead_many = _pick(rng, (f" The {label}s {q_prep} {{query}} are", " Answer:", " They are", f" The {label}s are",
                            f" {{query}} -> {label}s:", f" Sure, the {label}s {q_prep} {{query}} are"))
    if wide_cues and rng.random() < (0.8 if open_cues else 0.5):   # bank 5: most questions end in an open cue
        cue = open_cue(rng) if open_cues else _pick(rng, _WIDE_CUES)
        lead_one, lead_many = f" The {label} {q_prep} {{query}} {cue}", f" The {label}s {q_prep} {{query}} {cue}"
    q_one = f"\n{_pick(rng, _Q_OPENERS)} the {label} {q_prep} {{query}}?{lead_one}"
    q_many = f"\n{_pick(rng, _Q_OPENERS_MANY)} all the {label}s {q_prep} {{query}}?{lead_many}"
    return {"label": label, "needle": needle, "question_one": q_one, "question_many": q_many}


_VT_KW = ("VAR", "let", "set", "var", "def", "const", "val", "", "", "cell", "reg", "slot")
_VT_OPS = ("=", ":=", "<-", "is", "gets", "becomes", "takes the value of", "copies")
_VT_ENDS = (".", ";", "", " .", ",")


def procedural_vt_template(rng: np.random.Generator) -> dict:
    """A variable-tracking wording assembled at random (statement keyword, operator, ending, question)."""
    kw, op, end = _pick(rng, _VT_KW), _pick(rng, _VT_OPS), _pick(rng, _VT_ENDS)
    kw = f"{kw} " if kw else ""
    first_op = "is" if op in ("takes the value of", "copies") else op
    q = _pick(rng, ("Which names hold {value}", "What variables carry {value}", "Which names are equal to {value}",
                    "Which symbols get {value}", "List the names with value {value}",
                    "Which variables are assigned the value {value}"))
    lead = _pick(rng, (" Answer: {count} names hold {value}, they are:", " Answer: the {count} names are:",
                       " Answer: following the chains, the {count} names are:", " Answer:"))
    return {"first": f" {kw}{{var}} {first_op} {{value}}{end}", "hop": f" {kw}{{var}} {op} {{prev}}{end}",
            "question": f"\n{q}?{lead}"}


@functools.lru_cache(maxsize=1)
def heldout_phrases() -> tuple[str, ...]:
    """Distinctive pieces of the held-out wordings (tests check training rows never contain them)."""
    out = [lab.split(" {type_v}")[0] for lab in HELDOUT_LABELS + HELDOUT2_LABELS]
    out += ["belonging to", "owns the", "belong to", "Variable ", "ends up with", "end up with", " reads", "namely"]
    out += ["was handed", "happens to be", "happen to be", "Please provide", "Certainly", "Can you recall", "Put ",
            "contain", "in the end"]
    return tuple(out)
