"""The default SFT data generator: deterministic, correct on a sample of items, and split by item."""

import re

import pytest

from llmlab.chat.template import validate_messages
from llmlab.data.corpus import read_work
from llmlab.tasks.check import CHECKABLE_KINDS, exact_match, normalize_answer
from llmlab.tasks.synth import IDENTITY, REFUSAL, _resolve, corpus_facts, generate, split_of

pytestmark = pytest.mark.slow  # parses the whole corpus once (~2 s)


@pytest.fixture(scope="module")
def data():
    return generate(n_train=1500, n_val=300, seed=0)


def _single(convs, kind):
    return [c for c in convs if c.meta["kind"] == kind]


def test_deterministic_and_seeded(data):
    again = generate(n_train=1500, n_val=300, seed=0)
    assert [c.to_json() for c in data[0]] == [c.to_json() for c in again[0]]
    assert [c.to_json() for c in data[1]] == [c.to_json() for c in again[1]]
    other = generate(n_train=50, n_val=10, seed=1)
    assert [c.to_json() for c in other[0]] != [c.to_json() for c in data[0][:50]]
    # The held-out set does not depend on how many training conversations were asked for.
    assert [c.to_json() for c in generate(n_train=10, n_val=300, seed=0)[1]] == [c.to_json() for c in data[1]]


def test_every_conversation_is_valid_and_varied(data):
    train, val = data
    for c in train + val:
        validate_messages(c.messages)
        assert c.messages[-1]["role"] == "assistant" and c.messages[-1]["content"] == c.meta["answer"]
    kinds = {c.meta["kind"] for c in train}
    assert set(CHECKABLE_KINDS) <= kinds and {"identity", "refusal", "multi", "sonnet", "characters"} <= kinds
    questions = [c.messages[-2]["content"] for c in train]
    assert len(set(questions)) > 0.8 * len(questions)  # varied, not a handful repeated
    assert any(c.messages[0]["role"] == "system" for c in train)


def test_arithmetic_spell_reverse_count_are_right(data):
    train, val = data
    for c in _single(train + val, "arithmetic"):
        q = c.messages[-2]["content"]
        nums = [int(n) for n in re.findall(r"\d+", q)]
        a, b = nums[-2], nums[-1]
        word_ops = {"plus": a + b, "add": a + b, "+": a + b, "minus": a - b, "-": a - b, "times": a * b,
                    "*": a * b, " x ": a * b, "multiply": a * b}
        if q.startswith("Subtract") or "Subtract" in q:
            want = b - a  # "Subtract b from a" lists b first
        else:
            want = next(v for k, v in word_ops.items() if k in q.lower())
        assert int(c.meta["answer"]) == want, q
    for c in _single(train + val, "spell"):
        assert re.search(r"\b" + c.meta["answer"].replace("-", "") + r"\b", c.messages[-2]["content"])
        assert re.fullmatch(r"[a-z](-[a-z])+", c.meta["answer"])
    for c in _single(train + val, "reverse"):
        assert re.search(r"\b" + c.meta["answer"][::-1] + r"\b", c.messages[-2]["content"])
    for c in _single(train + val, "count_letters"):
        assert int(c.meta["answer"]) == len(_word_of(c))


def test_number_and_letter_kinds_are_right(data):
    train, val = data
    for c in _single(train + val, "arithmetic"):  # digit by digit: no carrying, no borrowing
        a, b = [int(n) for n in re.findall(r"\d+", c.messages[-2]["content"])][-2:]
        if int(c.meta["answer"]) == a + b:
            assert a % 10 + b % 10 <= 9 and a // 10 + b // 10 <= 9
        else:
            big, small = max(a, b), min(a, b)
            assert int(c.meta["answer"]) == big - small and big % 10 >= small % 10
    for c in _single(train + val, "next_number"):
        q, n = c.messages[-2]["content"], int(re.findall(r"\d+", c.messages[-2]["content"])[0])
        assert int(c.meta["answer"]) == (n - 1 if ("before" in q or "minus" in q or "less" in q) else n + 1), q
    for c in _single(train + val, "parity"):
        n = int(re.findall(r"\d+", c.messages[-2]["content"])[-1])
        assert c.meta["answer"] == ("even" if n % 2 == 0 else "odd")
    for c in _single(train + val, "compare"):
        q = c.messages[-2]["content"]
        a, b = [int(n) for n in re.findall(r"\d+", q)][-2:]
        assert int(c.meta["answer"]) == (min(a, b) if "smaller" in q else max(a, b)), q
    for kind, pos in (("first_letter", 0), ("last_letter", -1)):
        items = _single(train + val, kind)
        assert items
        for c in items:
            word = re.search(r"'([a-z]+)'|\"([a-z]+)\"|word ([a-z]+)\?", c.messages[-2]["content"])
            assert c.meta["answer"] == next(g for g in word.groups() if g)[pos]


def _word_of(c):
    """The word a spell / reverse / count-letters question is about."""
    if c.meta["kind"] == "spell":
        return c.meta["answer"].replace("-", "")
    if c.meta["kind"] == "reverse":
        return c.meta["answer"][::-1]
    m = re.search(r"word '([a-z]+)'|\"([a-z]+)\"|letters in ([a-z]+)\.", c.messages[-2]["content"])
    return next(g for g in m.groups() if g)


def test_who_said_is_really_spoken_by_that_character_in_that_play(data):
    facts = corpus_facts()
    titles = {v: k for k, v in facts["titles"].items()}
    items = _single(data[0] + data[1], "who_said")
    assert len(items) > 50
    for c in items[:40]:
        quote = re.search(r"[\"'](.+)[\"']", c.messages[-2]["content"]).group(1)
        speaker, title = c.meta["answer"].split(", in ", 1)
        text = read_work(titles[title])
        where = [m.start() for m in re.finditer(r"^[ \t]*" + re.escape(quote) + r"[ \t]*$", text, re.M)]
        assert len(where) == 1  # a line of its own exactly once, so the attribution is unambiguous
        # Walk back from the line to the nearest speech heading: it must resolve to the answer.
        before = text[: where[0]].rstrip().split("\n\n")
        heading = next(b.strip().split("\n")[0] for b in reversed(before) if b.strip()
                       and re.fullmatch(r"[A-Z][A-Za-z' -]*\.?", b.strip().split("\n")[0].strip()))
        assert speaker.lower() in (heading.rstrip(".").lower(), _expand_for(heading, titles[title]).lower())


def _expand_for(heading, play):
    from llmlab.tasks.synth import _persons_words

    return _resolve(heading.strip().rstrip("."), _persons_words(read_work(play))) or ""


def test_abbreviations_expand_through_the_persons_list():
    from llmlab.tasks.synth import _persons_words

    persons = _persons_words(read_work("hamlet"))
    assert _resolve("Ham", persons) == "Hamlet" and _resolve("Hor", persons) == "Horatio"
    assert _resolve("All", persons) is None and _resolve("Ros and Guil", persons) is None
    assert _resolve("LADY MACBETH", _persons_words(read_work("macbeth"))) == "Lady Macbeth"
    assert _resolve("FAL", _persons_words(read_work("henry_iv_part_1"))) == "Falstaff"


def test_split_is_by_item_no_leak(data):
    train, val = data
    def keys(convs):
        out = set()
        for c in convs:
            if c.meta["kind"] in ("spell", "reverse", "count_letters"):
                out.add(("word", _word_of(c)))
            if c.meta["kind"] in ("who_said", "which_play", "count_words"):
                out.add(("line", re.search(r"[\"'](.+)[\"']", c.messages[-2]["content"]).group(1)))
        return out
    assert not (keys(train) & keys(val))
    val_q = {c.messages[-2]["content"] for c in val if c.meta["kind"] == "arithmetic"}
    train_q = {c.messages[-2]["content"] for c in train if c.meta["kind"] == "arithmetic"}
    assert not (val_q & train_q)
    assert split_of("arith:1+2") == split_of("arith:1+2")


def test_identity_refusal_consistent_and_exact_match(data):
    train, _ = data
    assert {c.meta["answer"] for c in _single(train, "refusal")} == {REFUSAL}
    assert IDENTITY in {c.meta["answer"] for c in _single(train, "identity")}
    assert exact_match(" 42. ", "42") and exact_match("Hamlet, in hamlet", "Hamlet, in Hamlet")
    assert not exact_match("421", "42") and normalize_answer("'n-i-g-h-t'") == "n-i-g-h-t"
