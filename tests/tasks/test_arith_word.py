"""Arithmetic word problems (``tasks/arith_word.py``): the split by number tuple never overlaps, the text
parses back to the problem, the worked solutions (every order, operands swapped or not) are right line by line
and end at the answer, the checker accepts right answers and rejects wrong ones, and training data is
train-split only.

    .venv/bin/pytest tests/tasks/test_arith_word.py -q
"""

import random

import pytest

from llmlab.errors import LlmlabError
from llmlab.tasks import arith_word as aw


def test_splits_share_no_number_tuple():
    train = aw.problems(3000, "train", 0, distinct=False)
    val, test = aw.problems(200, "val", 0), aw.problems(500, "test", 0)
    keys = {s: {p.numbers for p in ps} for s, ps in (("train", train), ("val", val), ("test", test))}
    assert len(keys["test"]) == 500 and len(keys["val"]) == 200  # distinct within a held-out set
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]
    # The split is a function of the numbers alone: the same numbers under other words land on the same side.
    for p in test[:50]:
        other = aw.Problem("Ben", "coins", p.start, tuple(aw.Event(e.kind, e.numbers, 0) for e in p.events))
        assert other.split == "test"
    # Roughly the advertised shares, from an unfiltered draw.
    rng = random.Random(1)
    drawn = [p for p in (aw.random_problem(rng) for _ in range(20000)) if p is not None]
    share = sum(p.split == "test" for p in drawn) / len(drawn)
    assert abs(share - aw.TEST_FRACTION) < 0.02
    # Deterministic: the same seed, the same problems.
    assert [p.text for p in aw.problems(20, "test", 0)] == [p.text for p in test[:20]]


def test_training_conversations_are_train_split_and_worked():
    convs = aw.training_conversations(aw.ArithDataConfig(n_cot=300, n_io=50))
    assert len(convs) == 350
    kinds = {c.meta["kind"] for c in convs}
    shared = {o for o, share in zip(aw.ORDERS, aw.ArithDataConfig().order_shares) if share > 0}
    assert kinds == {"cot", "io"} and {c.meta["order"] for c in convs if c.meta["kind"] == "cot"} == shared
    for c in convs:
        p = aw.parse_problem(c.meta["puzzle"])
        assert p.split == "train"
        reply = c.messages[-1]["content"]
        if c.meta["kind"] == "cot":
            think, answer = reply
            assert answer["text"] == str(p.answer) and think["type"] == "think"
            assert aw.parse_steps(think["text"])[-1][3] == p.answer
        else:
            assert reply == str(p.answer)


def test_text_parses_back_and_garbage_does_not():
    for p in aw.problems(300, "train", 3, distinct=False):
        assert aw.parse_problem(p.text) == p
        assert aw.parse_problem("  " + p.text.replace(". ", ".  ") + "\n") == p  # spacing is not meaning
    for bad in ("4 9 10 13", "", "Ann has 3 apples. How many apples does Ann have now?",
                "Ann has 3 apples. She buys 2 more. How many pens does Ann have now?",
                "Ann has 3 apples. She steals 2. How many apples does Ann have now?",
                "Ann has 3 apples. She buys 2 more. How many apples does Ann have now? And 5 more."):
        with pytest.raises(LlmlabError):
            aw.parse_problem(bad)


def test_worked_solutions_are_right_line_by_line():
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    orders_differ = 0
    for p in aw.problems(500, "train", 1):
        assert 0 <= p.answer <= aw.MAX_COUNT
        sols = {o: aw.solution_lines(p, o) for o in aw.ORDERS}
        sols["swapped"] = aw.solution_lines(p, "story", random.Random(0), swap_share=1.0)
        for lines in sols.values():
            steps = aw.parse_steps("\n".join(lines))
            assert len(steps) == len(lines)  # every line is one "a op b = c"
            assert all(ops[op](a, b) == c for a, op, b, c in steps)
            assert steps[-1][3] == p.answer
        orders_differ += sols["story"] != sols["totals"]
    assert orders_differ > 200  # the two orders are often different paths (the diversity SC votes over)
    with pytest.raises(LlmlabError):
        aw.solution_lines(aw.problems(1)[0], "backwards")


def test_checker_and_normaliser():
    p = aw.parse_problem("Ann has 23 apples. She buys 3 bags of 12. She gives away 17. "
                         "How many apples does Ann have now?")
    assert p.answer == 42 and aw.solution_lines(p) == ["3 * 12 = 36", "23 + 36 = 59", "59 - 17 = 42"]
    assert aw.solution_lines(p, "story", random.Random(0), 1.0) == ["12 * 3 = 36", "36 + 23 = 59", "59 - 17 = 42"]
    p2 = aw.parse_problem("Ann has 23 apples. She loses 5. She buys 3 bags of 12. She gives away 17. "
                          "How many apples does Ann have now?")
    assert aw.solution_lines(p2, "gains") == ["3 * 12 = 36", "23 + 36 = 59", "59 - 5 = 54", "54 - 17 = 37"]
    assert aw.solution_lines(p2, "totals") == ["3 * 12 = 36", "23 + 36 = 59", "5 + 17 = 22", "59 - 22 = 37"]
    for right in ("42", " 42. ", "Answer: 42", "The answer is 42.", "42 apples", "042"):
        assert aw.check_answer(p, right).ok, right
        assert aw.normalise_answer(right) == "42"
    assert aw.check_answer(p.text, "42").ok  # the text works as the puzzle too
    for wrong in ("41", "43", "", "forty-two", "42 43", "59 - 17 = 42", "-42", "4 2"):
        v = aw.check_answer(p, wrong)
        assert not v.ok and v.reason, wrong
    assert aw.normalise_answer("1,234") == "1234" and aw.normalise_answer("Forty") == "forty"


def test_event_counts_knob():
    # The default draws 2 or 3 events, and naming that default draws the very same problems.
    default = aw.problems(200, "test", 0)
    assert {len(p.events) for p in default} == {2, 3}
    assert [p.text for p in aw.problems(200, "test", 0, events=(2, 3))] == [p.text for p in default]
    hard = aw.problems(300, "test", 0, events=(3, 4))
    assert {len(p.events) for p in hard} == {3, 4} and all(p.split == "test" for p in hard)
    assert all(0 <= p.answer <= aw.MAX_COUNT and aw.parse_problem(p.text) == p for p in hard)
    four = aw.problems(100, "train", 0, events=(4,))
    assert {len(p.events) for p in four} == {4}
    # Held out stays held out: training problems of any shape never share a number tuple with test ones.
    train = aw.problems(3000, "train", 0, distinct=False, events=(3, 4))
    assert not {p.numbers for p in train} & {p.numbers for p in hard}
    for bad in ((), (1,), (2, 6)):
        with pytest.raises(LlmlabError):
            aw.problems(5, "test", 0, events=bad)
        with pytest.raises(LlmlabError):
            aw.ArithDataConfig(events=bad).validate()
    convs = aw.training_conversations(aw.ArithDataConfig(n_cot=50, n_io=10, events=(4,)))
    assert all(len(aw.parse_problem(c.meta["puzzle"]).events) == 4 for c in convs)


def test_shuffled_order_keeps_counts_in_range_and_varies():
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    rng = random.Random(0)
    firsts_differ = 0
    for p in aw.problems(300, "train", 2, events=(3, 4)):
        paths = set()
        for _ in range(8):
            lines = aw.solution_lines(p, "shuffled", rng, swap_share=0.3)
            steps = aw.parse_steps("\n".join(lines))
            assert len(steps) == len(lines) and all(ops[op](a, b) == c for a, op, b, c in steps)
            assert steps[-1][3] == p.answer
            # The running count (what a + or - line leaves, a group's product aside) stays in 0..MAX_COUNT.
            assert all(0 <= c <= aw.MAX_COUNT for _, op, _, c in steps if op in "+-")
            # Each event is used once: as many lines as the story's.
            assert len(lines) == len(aw.solution_lines(p, "story"))
            paths.add(tuple(lines))
        firsts_differ += len({path[0] for path in paths}) > 1
        # Without an rng the order is fixed by the problem's numbers.
        assert aw.solution_lines(p, "shuffled") == aw.solution_lines(p, "shuffled")
    assert firsts_differ > 150  # different first facts: the paths differ from the first line on


def test_order_shares_pick_the_orders():
    convs = aw.training_conversations(aw.ArithDataConfig(n_cot=80, n_io=0, order_shares=(0, 0, 0, 1)))
    assert {c.meta["order"] for c in convs} == {"shuffled"}
    for bad in ((0.5, 0.5, 0.0), (0, 0, 0, 0), (1, 0, 0, -1)):
        with pytest.raises(LlmlabError):
            aw.ArithDataConfig(order_shares=bad).validate()
