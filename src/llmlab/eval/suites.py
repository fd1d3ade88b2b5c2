"""The built-in task suites: small, generated on the spot (no downloads), seeded and versioned.

    from llmlab.eval.suites import builtin_task, BUILTIN_TASKS
    task = builtin_task("minimal_pairs", n=200, seed=0)     # a taskfile.Task; same arguments -> same items

    llmlab eval tasks --out eval_tasks/          # writes each as a JSONL task file (the format users extend)

They suit small models: a ~1M-parameter model trained for minutes on the bundled corpus should be above chance
on the language tasks, and the same model after SFT on the tasks it was taught (docs/LOG.md has the numbers).

* ``minimal_pairs`` (choice, 2 options): BLiMP-style pairs of sentences that differ in one word, the
  grammatical one against one that is not, built from templates in the corpus's English: subject-verb agreement
  (``The lords are here.`` / ``The lords is here.``, ``thou art`` / ``thou is``), the archaic ``hath``/``hast``,
  determiner-noun number (``these letters`` / ``these letter``), pronoun case (``She loves him.`` / ``She loves
  he.``) and modal word order (``I will follow him.`` / ``I follow will him.``). Each sentence is scored whole
  after ``<|bos|>`` (empty context), as lm-evaluation-harness scores BLiMP. Groups: the phenomena.
* ``cloze`` (choice, 4 options): a word of the corpus's *held-out* split (the last 10%, never trained on) after
  up to four lines of its context; the three wrong options are words of about the same corpus frequency, so a
  model cannot win by preferring common words: it must use the context.
* ``facts`` (choice, 4 options, question-answer): held-out questions of the SFT data's kinds ``which_play`` and
  ``who_said`` (``llmlab.tasks.synth``'s validation items: never trained on); wrong options are other items'
  answers. Posed through the chat template to a chat model, and few-shot as text to a base model.
* ``arithmetic`` and ``spelling`` (generate, exact match): held-out SFT-data questions, in equal shares of
  three kinds each (the groups): ``arithmetic`` (sums and differences below 100), ``next_number`` and
  ``compare`` (the larger or smaller of two numbers); ``spell`` (``k-i-n-g``), ``first_letter`` and
  ``last_letter``. A compare item names its two candidates, so its chance is 1/2 (the item's ``chance``); the
  others' is 0. The easier kinds give a small model's progress a scale: a 1M-parameter SFT model gets some
  of them right long before it adds two-digit numbers.
* ``bpb``: bits per byte of 64 passages of the held-out split (reported, not in the aggregate).

Versions: ``SUITE_VERSION`` names the generators as a whole; each task records it and its seed in its header,
and results record every task's content hash, so numbers from different item sets are never mixed up. Change a
generator's output -> bump ``SUITE_VERSION``.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter

from llmlab.errors import LlmlabError
from llmlab.eval.taskfile import Task

SUITE_VERSION = 1
DEFAULT_N = {"minimal_pairs": 500, "cloze": 400, "facts": 300, "arithmetic": 200, "spelling": 200, "bpb": 64}
BUILTIN_TASKS = tuple(DEFAULT_N)

# ----------------------------------------------------------------------------------------------------------
# minimal pairs

NOUNS = [("king", "kings"), ("queen", "queens"), ("lord", "lords"), ("lady", "ladies"), ("duke", "dukes"),
         ("knight", "knights"), ("soldier", "soldiers"), ("servant", "servants"), ("friend", "friends"),
         ("brother", "brothers"), ("sister", "sisters"), ("father", "fathers"), ("son", "sons"),
         ("daughter", "daughters"), ("man", "men"), ("woman", "women"), ("child", "children"),
         ("gentleman", "gentlemen"), ("villain", "villains"), ("fool", "fools"), ("messenger", "messengers")]
THINGS = [("letter", "letters"), ("sword", "swords"), ("ring", "rings"), ("crown", "crowns"), ("house", "houses"),
          ("horse", "horses"), ("book", "books"), ("jewel", "jewels"), ("flower", "flowers"), ("gift", "gifts")]
BE_COMPLEMENTS = ["here", "gone", "not well", "welcome", "dead", "ready", "content", "in love", "too late", "mad",
                  "at the gate", "come"]
HAVE_OBJECTS = ["a sword", "no money", "done", "seen the king", "lost my way", "a letter", "no friends",
                "heard the news", "spoken", "a fever"]
PRONOUN_VERBS = ["loves", "knows", "sees", "hates", "follows", "fears", "calls", "hears"]
MODALS = ["will", "shall", "must", "cannot", "would", "may"]
MODAL_VERBS = ["follow", "see", "love", "find", "tell", "kill", "know", "meet"]
OBJECTS = ["him", "her", "them", "thee", "the king", "my lord", "the duke"]
SUBJECT_BE = [("I", "am"), ("Thou", "art"), ("He", "is"), ("She", "is"), ("We", "are"), ("You", "are"),
              ("They", "are")]
BE_FORMS = ["am", "art", "is", "are"]
SUBJECT_HAVE = [("I", "have", "hath"), ("Thou", "hast", "hath"), ("He", "hath", "hast"), ("She", "hath", "hast"),
                ("We", "have", "hath"), ("They", "have", "hath"), ("You", "have", "hast")]
CASE = {"him": "he", "her": "she", "me": "I", "us": "we", "them": "they"}


def _agreement_be(rng: random.Random) -> tuple[str, str]:
    compl = rng.choice(BE_COMPLEMENTS)
    if rng.random() < 0.5:
        subj, verb = rng.choice(SUBJECT_BE)
    else:
        sing, plur = rng.choice(NOUNS)
        det = rng.choice(["The", "My", "Our", "Your"])
        subj, verb = (f"{det} {sing}", "is") if rng.random() < 0.5 else (f"{det} {plur}", "are")
    wrong = rng.choice([f for f in BE_FORMS if f != verb and not (verb == "are" and f == "art")])
    return f"{subj} {verb} {compl}.", f"{subj} {wrong} {compl}."


def _agreement_have(rng: random.Random) -> tuple[str, str]:
    obj = rng.choice(HAVE_OBJECTS)
    if rng.random() < 0.5:
        subj, good, bad = rng.choice(SUBJECT_HAVE)
    else:
        sing, plur = rng.choice(NOUNS)
        subj, good, bad = (f"The {sing}", "hath", "hast") if rng.random() < 0.5 else (f"The {plur}", "have", "hath")
    return f"{subj} {good} {obj}.", f"{subj} {bad} {obj}."


def _determiner_number(rng: random.Random) -> tuple[str, str]:
    """The noun's number after a fixed determiner (``this letter`` / ``this letters``), as BLiMP's
    determiner-noun agreement varies the noun. Half the items want the singular noun and half the plural, so a
    model that only prefers the more frequent form of a word scores 50% (varying the determiner instead, a
    2-minute base model scored 47%: it preferred "this" over "these" whatever the noun; docs/LOG.md)."""
    sing, plur = rng.choice(THINGS + NOUNS)
    frame = rng.choice(["Look upon {d} {n}.", "I know {d} {n}.", "Give me {d} {n}.", "Bring {d} {n} to me.",
                        "I will keep {d} {n}."])
    plural = rng.random() < 0.5  # half the items want the plural noun, half the singular
    near = rng.random() < 0.5
    det = ("these" if near else "those") if plural else ("this" if near else "that")
    good, bad = (plur, sing) if plural else (sing, plur)
    return frame.format(d=det, n=good), frame.format(d=det, n=bad)


def _pronoun_case(rng: random.Random) -> tuple[str, str]:
    verb = rng.choice(PRONOUN_VERBS)
    if rng.random() < 0.5:  # object position: accusative, not nominative
        subj = rng.choice(["She", "He", "The king", "My lord", "The duke"])
        obj = rng.choice(list(CASE))
        return f"{subj} {verb} {obj}.", f"{subj} {verb} {CASE[obj]}."
    subj = rng.choice(["He", "She"])  # subject position: nominative, not accusative
    obj = rng.choice(["me", "us", "them", "the king", "my lord"])
    wrong = {"He": "Him", "She": "Her"}[subj]
    return f"{subj} {verb} {obj}.", f"{wrong} {verb} {obj}."


def _modal_order(rng: random.Random) -> tuple[str, str]:
    subj = rng.choice(["I", "We", "You", "They", "He", "She"])
    modal, verb, obj = rng.choice(MODALS), rng.choice(MODAL_VERBS), rng.choice(OBJECTS)
    return f"{subj} {modal} {verb} {obj}.", f"{subj} {verb} {modal} {obj}."


PHENOMENA = {"agreement_be": _agreement_be, "agreement_have": _agreement_have,
             "determiner_number": _determiner_number, "pronoun_case": _pronoun_case, "modal_order": _modal_order}


def minimal_pairs(n: int, seed: int = 0) -> Task:
    rng = random.Random(f"llmlab-eval:minimal_pairs:{seed}")
    names = list(PHENOMENA)
    items, seen = [], set()
    for attempt in range(n * 50):
        if len(items) >= n:
            break
        ph = names[len(items) % len(names)]  # phenomena in turn: equal shares
        good, bad = PHENOMENA[ph](rng)
        if good == bad or good in seen:
            continue
        seen.add(good)
        answer = rng.randrange(2)
        choices = [good, bad] if answer == 0 else [bad, good]
        items.append({"context": "", "choices": choices, "answer": answer, "group": ph})
    return Task(name="minimal_pairs", kind="choice", items=items, style="text", metric="acc",
                description="BLiMP-style minimal pairs from templates: the grammatical sentence of two that differ "
                            "in one word, each scored whole", seed=seed, suite_version=SUITE_VERSION,
                source="llmlab.eval.suites")


# ----------------------------------------------------------------------------------------------------------
# cloze over the held-out split

WORD = re.compile(r"(?<![A-Za-z'])[a-z]{3,12}(?![A-Za-z'])")


@functools.lru_cache(maxsize=1)
def _corpus_words() -> tuple[list[str], dict[str, int]]:
    """Words of the train split with at least 5 occurrences, most frequent first, and their rank."""
    from llmlab.data.corpus import standard_split

    train, _ = standard_split()
    counts = Counter(WORD.findall(train))
    vocab = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= 5]
    return vocab, {w: i for i, w in enumerate(vocab)}


def cloze(n: int, seed: int = 0, *, context_lines: int = 4, band: int = 40) -> Task:
    from llmlab.data.corpus import standard_split

    _, val = standard_split()
    vocab, rank = _corpus_words()
    lines = val.split("\n")
    starts, pos = [], 0
    for ln in lines:
        starts.append(pos)
        pos += len(ln) + 1
    rng = random.Random(f"llmlab-eval:cloze:{seed}")
    items, seen = [], set()
    order = list(range(context_lines, len(lines)))
    rng.shuffle(order)
    for li in order:
        if len(items) >= n:
            break
        line = lines[li]
        # Not the line's first word (speech headings, capitals), and a known word with some line before it.
        cands = [m for m in WORD.finditer(line) if m.start() >= 8 and m.group() in rank]
        if not cands:
            continue
        m = rng.choice(cands)
        word = m.group()
        first = max(0, li - context_lines)
        context = val[starts[first]: starts[li] + m.start()]
        if not line[: m.start()].endswith(" ") or (li, m.start()) in seen:
            continue
        seen.add((li, m.start()))
        r = rank[word]
        lo, hi = max(0, r - band), min(len(vocab), r + band + 1)
        pool = [w for w in vocab[lo:hi] if w != word and w not in line]
        if len(pool) < 3:
            continue
        wrong = rng.sample(pool, 3)
        answer = rng.randrange(4)
        choices = wrong[:answer] + [word] + wrong[answer:]
        items.append({"context": context.rstrip(" "), "choices": [" " + c for c in choices], "answer": answer})
    return Task(name="cloze", kind="choice", items=items, style="text", metric="acc",
                description="the next word of a held-out passage against three words of similar corpus frequency",
                seed=seed, suite_version=SUITE_VERSION, source="llmlab.eval.suites (bundled:val)")


# ----------------------------------------------------------------------------------------------------------
# held-out questions of the SFT data (llmlab.tasks.synth)


@functools.lru_cache(maxsize=4)
def _synth_items(split: str, n_conv: int, seed: int) -> tuple:
    """Single-question conversations (no system prompt) of synth's train or validation side: (kind, q, a)."""
    from llmlab.tasks.synth import generate

    train, val = generate(n_train=n_conv if split == "train" else 0, n_val=n_conv if split == "val" else 0, seed=seed)
    convs = train if split == "train" else val
    return tuple((c.meta["kind"], c.messages[0]["content"], c.meta["answer"]) for c in convs
                 if len(c.messages) == 2 and c.messages[0]["role"] == "user")


def _synth_kind(kinds: tuple[str, ...], n: int, seed: int, split: str = "val") -> list[tuple[str, str, str]]:
    """The first n distinct questions of the given kinds (the generator is seeded, so always the same ones)."""
    n_conv = 4000
    while True:
        items = [it for it in _synth_items(split, n_conv, seed) if it[0] in kinds]
        uniq = list({it[1]: it for it in items}.values())
        if len(uniq) >= n or n_conv >= 256000:
            return uniq[:n]
        n_conv *= 2


def _shots(kinds: tuple[str, ...], seed: int, k: int = 3) -> list[dict]:
    """Solved examples from synth's *training* side (never an evaluated question)."""
    pool = _synth_kind(kinds, 50, seed + 1, split="train")
    out, used = [], set()
    for kind in kinds * k:  # the kinds in turn
        for it in pool:
            if it[0] == kind and it[1] not in used:
                used.add(it[1])
                out.append({"question": it[1], "answer": it[2]})
                break
        if len(out) >= k:
            break
    return out


def facts(n: int, seed: int = 0) -> Task:
    kinds = ("which_play", "who_said")
    qs = _synth_kind(kinds, n, seed)
    rng = random.Random(f"llmlab-eval:facts:{seed}")
    answers = {k: sorted({a for kind, _, a in _synth_kind(kinds, max(n, 400), seed) if kind == k}) for k in kinds}
    items = []
    for kind, q, a in qs:
        pool = [x for x in answers[kind] if x != a]
        if kind == "who_said":  # another play, so the question has one right answer
            pool = [x for x in pool if x.split(", in ", 1)[-1] != a.split(", in ", 1)[-1]]
        if len(pool) < 3:
            continue
        wrong = rng.sample(pool, 3)
        answer = rng.randrange(4)
        items.append({"question": q, "choices": wrong[:answer] + [a] + wrong[answer:], "answer": answer, "group": kind})
    return Task(name="facts", kind="choice", items=items, style="qa", metric="acc", few_shot=_shots(kinds, seed),
                description="held-out SFT-data questions (which play, who says a line), four options",
                seed=seed, suite_version=SUITE_VERSION, source="llmlab.tasks.synth (validation side)")


# Kinds whose answer a guess can hit: "which is larger, 12 or 40?" names both candidates.
GUESS_CHANCE = {"compare": 0.5}


def _synth_generate(name: str, kinds: tuple[str, ...], n: int, seed: int, max_new_tokens: int,
                    description: str) -> Task:
    """Equal shares of held-out questions of each kind (a group each); the few-shot examples one per kind."""
    items = []
    for j, kind in enumerate(kinds):
        share = n // len(kinds) + (1 if j < n % len(kinds) else 0)
        for _, q, a in _synth_kind((kind,), share, seed):
            it = {"question": q, "answer": a, "group": kind}
            if kind in GUESS_CHANCE:
                it["chance"] = GUESS_CHANCE[kind]
            items.append(it)
    return Task(name=name, kind="generate", items=items, style="qa", few_shot=_shots(kinds, seed),
                max_new_tokens=max_new_tokens, stop=("\n",), description=description, seed=seed,
                suite_version=SUITE_VERSION, source="llmlab.tasks.synth (validation side)")


def arithmetic(n: int, seed: int = 0) -> Task:
    return _synth_generate("arithmetic", ("arithmetic", "next_number", "compare"), n, seed, 8,
                           "held-out sums and differences below 100, the number after or before one, the larger or "
                           "smaller of two; exact match")


def spelling(n: int, seed: int = 0) -> Task:
    return _synth_generate("spelling", ("spell", "first_letter", "last_letter"), n, seed, 32,
                           "spell a held-out word letter by letter (k-i-n-g), its first and its last letter; exact match")


# ----------------------------------------------------------------------------------------------------------
# bits per byte of held-out passages


def bpb_passages(n: int, seed: int = 0, chars: int = 1500) -> Task:
    """``n`` passages of about ``chars`` characters, evenly spaced over the held-out split, cut at lines."""
    from llmlab.data.corpus import standard_split

    _, val = standard_split()
    step = max(chars, len(val) // max(1, n))
    offset = random.Random(f"llmlab-eval:bpb:{seed}").randrange(max(1, step - chars))
    items = []
    for start in range(offset, len(val) - chars, step):
        a = val.find("\n", start) + 1
        b = val.find("\n", a + chars)
        text = val[a: b if b > 0 else len(val)]
        if text.strip():
            items.append({"text": text})
        if len(items) >= n:
            break
    return Task(name="bpb", kind="bpb", items=items, description="bits per byte of held-out passages",
                seed=seed, suite_version=SUITE_VERSION, source="llmlab.eval.suites (bundled:val)")


GENERATORS = {"minimal_pairs": minimal_pairs, "cloze": cloze, "facts": facts, "arithmetic": arithmetic,
              "spelling": spelling, "bpb": bpb_passages}


def builtin_task(name: str, n: int = 0, seed: int = 0) -> Task:
    """A built-in task with ``n`` items (0 = its default size)."""
    if name not in GENERATORS:
        raise LlmlabError(f"unknown built-in task {name!r}; built-in: {', '.join(BUILTIN_TASKS)} "
                          "(or give a task file's path)")
    return GENERATORS[name](n or DEFAULT_N[name], seed)
