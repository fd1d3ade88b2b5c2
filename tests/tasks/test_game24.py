"""The Game of 24: the exact checker (accepts, rejects with a reason, exact fractions, no eval), the solver
against the paper's list of solvable puzzles, steps and their parser, value labels, expressions from steps,
the puzzle loader and generator, and the training data's exclusion of the 100 test games.

    .venv/bin/pytest tests/tasks -q
"""

import random
import re
from fractions import Fraction
from itertools import combinations_with_replacement

import pytest

from llmlab.errors import LlmlabError
from llmlab.tasks import game24 as g
from llmlab.tasks import game24_text as gt


# ----------------------------------------------------------------------------------------------------------
# The checker


@pytest.mark.parametrize("puzzle, answer", [
    ("4 9 10 13", "(10-4)*(13-9)"),
    ("4 9 10 13", "(10 - 4) * (13 - 9) = 24"),
    ("4 9 10 13", "Answer: (13 - 9) * (10 - 4) = 24"),
    ("3 3 8 8", "8/(3-8/3)"),  # needs exact fractions: 8 / (1/3)
    ("1 5 5 5", "5 * (5 - 1 / 5)"),
    ("1 1 4 6", "6 * 4 * 1 * 1"),
    ("2 2 6 6", "6 * 2 + 6 * 2"),
])
def test_checker_accepts(puzzle, answer):
    v = g.check_answer(puzzle, answer)
    assert v.ok and v.reason == "" and v.value == 24


@pytest.mark.parametrize("puzzle, answer, reason", [
    ("4 9 10 13", "(10-4)*(13-9)+4", "uses 4 twice"),  # reuse of a number
    ("2 4 9 10", "2 * 10 + 4", "does not use 9"),  # a missing number
    ("4 9 10 13", "(10-4)*(13-7)", "uses 7, which is not in the puzzle"),
    ("4 9 10 13", "(10-4)^(13-9)", "'^' is not allowed"),  # bad operators
    ("4 9 10 13", "(10-4)**(13-9)", "unexpected '*'"),
    ("4 9 10 13", "(10-4)x(13-9)", "'x' is not allowed"),
    ("4 9 10 13", "__import__('os')", "'_' is not allowed"),  # no eval anywhere
    ("4 9 10 13", "-4+9+10+13-4", "unary minus"),
    ("4 9 10 13", "4.0*9-10-13+...", "a decimal point is not allowed"),
    ("1 1 1 1", "1/(1-1)+1", "division by zero"),
    ("1 2 3 4", "(1+2)/(3-3)*4", "uses 3 twice"),
    ("1 1 2 3", "3/(1-1)*2", "division by zero"),
    ("4 9 10 13", "(10-4)*(13-9) = 25", "claims '= 25'"),
    ("4 9 10 13", "(10-4)*(13-9", "unbalanced"),
    ("4 9 10 13", "4 + 9 + 10 + 13", "makes 36, not 24"),
    ("3 3 8 8", "8/3-8/3+3*8", "uses 3 3 times"),
    ("1 2 3 4", "", "empty"),
])
def test_checker_rejects_with_reason(puzzle, answer, reason):
    v = g.check_answer(puzzle, answer)
    assert not v.ok
    assert reason in v.reason


def test_checker_is_exact_with_fractions():
    # 8 / (3 - 8/3) is exactly 24; in floating point 3 - 8/3 is not exactly 1/3.
    assert g.check_answer((3, 3, 8, 8), "8 / (3 - 8 / 3)").value == Fraction(24)
    v = g.check_answer((1, 3, 4, 6), "6 / (1 - 3 / 4)")
    assert v.ok
    assert g.check_answer((1, 3, 4, 6), "6 / (1 - 4 / 3)").reason == "it makes -18, not 24"


def test_parse_puzzle_and_range():
    assert g.parse_puzzle("13, 4 10  9") == (4, 9, 10, 13)
    with pytest.raises(LlmlabError, match="out of range"):
        g.parse_puzzle("4 9 10 14")
    with pytest.raises(LlmlabError, match="4 numbers, got 3"):
        g.parse_puzzle("4 9 10")
    with pytest.raises(LlmlabError, match="whole numbers"):
        g.parse_puzzle("4 9 x 10")


def test_normalise_answer_votes_equivalent_spellings_together():
    a = g.normalise_answer("(4+8)*(6-4)")
    assert a == g.normalise_answer("(6 - 4) * (8 + 4) = 24") == g.normalise_answer("Answer: (6-4)*(4+8)")
    assert a != g.normalise_answer("(8-4)*(6+4)")


# ----------------------------------------------------------------------------------------------------------
# Solver, steps, labels


def test_solver_agrees_with_the_papers_list_of_solvable_puzzles():
    puzzles = {p.numbers for p in g.load_puzzles()}
    assert len(puzzles) == 1362
    # The paper's 1,362 puzzles are exactly the solvable multisets of 1..13 (of 1,820).
    for m in combinations_with_replacement(range(1, 14), 4):
        assert g.reachable(m) == (m in puzzles), m


def test_solutions_pass_the_checker_and_steps_round_trip():
    rng = random.Random(0)
    for p in g.load_puzzles()[::7]:
        steps = g.solve(p.numbers, rng)
        expr = g.expression_from_steps(p.numbers, steps)
        assert g.check_answer(p.numbers, expr).ok, (p, expr)
        assert steps[-1].left == (Fraction(24),)
        for s in steps:
            assert g.parse_step(str(s)) == s
    assert g.solve((1, 1, 1, 1)) is None


def test_fraction_steps_in_the_papers_format():
    steps = g.solve((3, 3, 8, 8))
    assert [str(s) for s in steps] == ["8 / 3 = 8/3 (left: 8/3 3 8)", "3 - 8/3 = 1/3 (left: 1/3 8)",
                                       "8 / 1/3 = 24 (left: 24)"]
    assert g.expression_from_steps((3, 3, 8, 8), steps) == "8 / (3 - 8 / 3) = 24"


def test_next_steps_are_distinct_moves():
    steps = g.next_steps((4, 4, 6, 8))
    lefts = [s.left for s in steps]
    assert len(lefts) == len(set(lefts))
    assert all(s.result >= 0 for s in steps)  # subtraction never goes negative
    assert str(steps[0]) == "4 + 4 = 8 (left: 6 8 8)"
    # 5 * 1 and 5 / 1 leave the same numbers: listed once.
    assert sum(1 for s in g.next_steps((1, 5)) if s.left == (Fraction(5),)) == 1


def test_parse_step_keeps_the_models_claims():
    s = g.parse_step("  4 + 8 = 13 (left: 4 6 13) ")  # wrong arithmetic parses as written
    assert s is not None and s.result == 13 and s.left == (4, 6, 13)
    assert g.parse_step("4 + 8 = 12") is None
    assert g.parse_step("so 4 + 8 is 12 (left: 4 6 12)") is None


def test_value_labels():
    assert g.value_label((4, 6, 12)) == "sure"  # 12 * (6 - 4)
    assert g.value_label((1, 1, 2)) == "impossible"
    assert g.value_label((Fraction(8, 3), 3, 8)) == "likely"  # only through 1/3
    assert g.value_label((24,)) == "sure" and g.value_label((23,)) == "impossible"


# ----------------------------------------------------------------------------------------------------------
# Puzzles, the test set, and training data that never holds a test game


def test_loader_and_test_set():
    ps = g.load_puzzles()
    assert [p.rank for p in ps[:3]] == [1, 2, 3]
    test = g.test_puzzles()
    assert len(test) == 100 and {p.rank for p in test} == set(range(901, 1001))
    assert test[-1].numbers == (4, 9, 10, 13)
    assert g.is_test((13, 10, 9, 4)) and not g.is_test((1, 1, 4, 6))


def test_generator_never_makes_a_test_game():
    made = g.generate_puzzles(3000, seed=1, solvable=None)
    assert not any(g.is_test(m) for m in made)
    assert all(g.reachable(m) for m in g.generate_puzzles(50, seed=2))
    assert not any(g.reachable(m) for m in g.generate_puzzles(50, seed=3, solvable=False))


def _small_cfg(**kw):
    base = dict(n_io=40, n_cot=40, n_propose=(10, 10, 10), n_value=(40, 40, 10), n_answer=20, n_judge=20,
                state_sources=60)
    return gt.Game24DataConfig(**{**base, **kw})


def _four_number_sets(conv) -> list[tuple[int, ...]]:
    """Every run of exactly four whole numbers in a conversation's user turns (the puzzles it shows)."""
    import re

    out = []
    for m in conv.messages:
        if m["role"] != "user":
            continue
        for run in re.findall(r"(?:for|with) ((?:\d+ ){3}\d+)\b", m["content"]):
            out.append(tuple(sorted(int(x) for x in run.split())))
    return out


def test_training_data_excludes_test_games():
    convs = gt.training_conversations(_small_cfg())
    kinds = {c.meta["kind"] for c in convs}
    assert kinds == set(gt.KINDS)
    shown = [s for c in convs for s in _four_number_sets(c)]
    assert len(shown) > 100
    assert not any(g.is_test(s) for s in shown)
    holdout = gt.holdout_puzzles(_small_cfg())
    assert not any(s in holdout for s in shown)
    # Asking for a test game, in any order, is refused.
    with pytest.raises(LlmlabError, match="test games"):
        gt.training_conversations(_small_cfg(), puzzles=[(1, 1, 4, 6), (13, 10, 9, 4)])
    with pytest.raises(LlmlabError, match="test games"):
        gt.assert_trainable((10, 4, 6, 5))
    assert not any(g.is_test(m) for m in gt.trainable_multisets(_small_cfg()))


def test_training_labels_are_right():
    convs = gt.training_conversations(_small_cfg(seed=3))
    for c in convs:
        kind, user, reply = c.meta["kind"], c.messages[0]["content"], c.messages[-1]["content"]
        if kind == "io":
            assert g.check_answer(c.meta["puzzle"], reply).ok
        elif kind == "answer":
            _assert_worked_answer(c.meta["puzzle"], user, reply)
        elif kind == "cot":
            thought, answer = reply[0]["text"], reply[1]["text"]
            assert g.check_answer(c.meta["puzzle"], answer).ok
            assert [str(s) for s in gt.parse_proposals(thought)] == thought.splitlines()
        elif kind == "judge":
            answer = user.split("\n", 1)[1]
            assert (gt.parse_value(reply) == "sure") == g.check_answer(c.meta["puzzle"], answer).ok
            assert reply == gt.judge_reply(c.meta["puzzle"], answer)
        elif kind == "value":
            state = [g.parse_number(x) for x in user[4:].split(" make 24")[0].split()]
            assert gt.parse_value(reply) == g.value_label(state)
            _assert_worked_value(state, reply)
        elif kind == "propose":
            state = [g.parse_number(x) for x in user.split(" for ")[1].rstrip(":").split()]
            assert gt.parse_proposals(reply)[0] in g.next_steps(state) and "\n" not in reply


def test_judge_data_has_every_kind_of_near_miss():
    convs = [c for c in gt.training_conversations(_small_cfg(n_judge=300, seed=5)) if c.meta["kind"] == "judge"]
    by_kind = {}
    for c in convs:
        answer = c.messages[0]["content"].split("\n", 1)[1]
        by_kind.setdefault(c.meta["wrong"], []).append((c.meta["puzzle"], answer, c.messages[-1]["content"]))
    assert set(by_kind) == {"right", *gt.JUDGE_WRONG}
    by_kind = {k: [(pz, a, gt.parse_value(reply)) for pz, a, reply in rows] for k, rows in by_kind.items()}
    assert all(label == "sure" for _, _, label in by_kind["right"])
    share = sum(label == "sure" for rows in by_kind.values() for _, _, label in rows) / len(convs)
    assert 0.4 < share < 0.6
    # "foreign": a right answer of a neighbouring puzzle -- it makes 24, with numbers this puzzle does not have.
    for puzzle, answer, label in by_kind["foreign"]:
        assert label == "impossible" and "uses" in g.check_answer(puzzle, answer).reason
    # "neighbour": this puzzle's numbers, but not 24.
    assert all("makes" in g.check_answer(pz, a).reason for pz, a, lab in by_kind["neighbour"] if lab == "impossible")


def test_the_judge_works_an_answer_out():
    assert gt.judge_reply((2, 4, 4, 6), "(4 + 4) * 6 / 2 = 24") == ("uses 2 4 4 6, puzzle 2 4 4 6: same numbers\n"
                                                                   "4 + 4 = 8\n8 * 6 = 48\n48 / 2 = 24\nsure")
    assert gt.judge_reply("2 4 4 6", "(4 + 4) * 6 / 2 = 24", compare=False) == "uses 2 4 4 6\n4 + 4 = 8\n8 * 6 = 48\n48 / 2 = 24\nsure"
    assert gt.judge_reply((8, 9, 9, 12), "9 + 9 + 12 - 8 = 24").endswith("30 - 8 = 22\nimpossible")
    wrong_numbers = gt.judge_reply((3, 4, 7, 11), "(10 - 4) * (7 - 3) = 24")
    assert wrong_numbers.startswith("uses 3 4 7 10, puzzle 3 4 7 11: different numbers\n")
    assert wrong_numbers.endswith("6 * 4 = 24\nimpossible")
    assert gt.judge_reply((1, 3, 3, 8), "8 / (3 - 3) + 1 = 24").splitlines()[-2:] == ["8 / 0 = undefined", "impossible"]
    assert gt.judge_reply((1, 2, 3, 4), "1 2 3 4") == "cannot read it\nimpossible"
    assert gt.parse_value(gt.judge_reply((1, 2, 3, 4), "(1 + 2 + 3) * 4 = 24")) == "sure"


_OP_LINE = re.compile(r"^(-?\d+(?:/\d+)?) ([-+*/]) (-?\d+(?:/\d+)?) = (-?\d+(?:/\d+)?)$")


def _op(line: str):
    """``(a, op, b, c)`` of an ``a op b = c`` line, after checking that c is right."""
    m = _OP_LINE.match(line)
    assert m, line
    a, b, c = (g.parse_number(m.group(i)) for i in (1, 3, 4))
    assert {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[m.group(2)] == c, line
    return a, m.group(2), b, c


def _assert_worked_value(state, reply: str, tries: int = 3) -> None:
    """A worked value reply: right arithmetic on the state's own numbers, the solver's verdict last, and the
    verdict says what the lines showed (sure/likely right after a line that made 24, else impossible)."""
    from collections import Counter

    *lines, verdict = reply.splitlines()
    state = [Fraction(x) for x in state]
    assert verdict == g.value_label(state)
    if len(state) == 1:
        assert lines == []
        return
    results = []
    for line in lines:
        if len(state) == 2:
            a, _, b, c = _op(line)
            assert Counter([a, b]) == Counter(state)
        else:
            first, second = line.split(", ")
            a, _, b, r = _op(first)
            rest = Counter(state) - Counter([a, b])
            assert sum(rest.values()) == 1 and Counter([a, b]) + rest == Counter(state), line
            x, _, y, c = _op(second)
            assert Counter([x, y]) == rest + Counter([r]), line
        results.append(c)
    assert all(c != 24 for c in results[:-1])
    assert (bool(results) and results[-1] == 24) == (verdict != "impossible")
    if len(state) == 3:
        assert len(lines) <= tries and (verdict != "impossible" or len(lines) == min(tries, len(g.next_steps(state))))


def _assert_worked_answer(puzzle, user: str, reply: str) -> None:
    """A worked answer: one line per step of the prompt, each an expression of the puzzle's numbers that has
    the step's value, the last a right answer (what ``parse_answer`` reads)."""
    steps = gt.parse_proposals(user.split("Steps:\n", 1)[1])
    lines = reply.splitlines()
    assert len(lines) == len(steps) == 3
    for step, line in zip(steps, lines):
        expr, _, value = line.rpartition(" = ")
        assert g.parse_number(value) == step.result
        assert g.worked_steps(expr)[1][-1].endswith(f" = {g.fmt(step.result)}")  # the expression has that value
    assert gt.parse_answer(reply) == lines[-1] and g.check_answer(puzzle, lines[-1]).ok


def test_worked_answers():
    steps = [g.parse_step(x) for x in ("8 - 4 = 4 (left: 3 4 12)", "4 * 3 = 12 (left: 12 12)", "12 + 12 = 24 (left: 24)")]
    assert gt.answer_reply((3, 4, 8, 12), steps) == "8 - 4 = 4\n(8 - 4) * 3 = 12\n12 + (8 - 4) * 3 = 24"
    steps = [g.parse_step(x) for x in ("8 / 3 = 8/3 (left: 3 8/3 8)", "3 - 8/3 = 1/3 (left: 1/3 8)",
                                       "8 / 1/3 = 24 (left: 24)")]
    assert gt.answer_reply((3, 3, 8, 8), steps).splitlines()[-1] == "8 / (3 - 8 / 3) = 24"
    for p in [(1, 2, 4, 7), (4, 4, 6, 8), (1, 5, 9, 13)]:
        for seed in range(5):
            steps = g.solve(p, random.Random(seed))
            _assert_worked_answer(p, gt.answer_messages(p, steps)[0]["content"], gt.answer_reply(p, steps))
    convs = gt.training_conversations(_small_cfg(worked_answers=False, judge_compares_numbers=False))
    for c in convs:
        if c.meta["kind"] == "answer":
            assert "\n" not in c.messages[-1]["content"] and g.check_answer(c.meta["puzzle"], c.messages[-1]["content"]).ok
        if c.meta["kind"] == "judge":
            assert "puzzle" not in c.messages[-1]["content"].splitlines()[0]


def test_worked_value_replies():
    import random

    assert gt.value_reply((2, 12)) == "12 + 2 = 14\n12 - 2 = 10\n12 * 2 = 24\nsure"
    assert gt.value_reply((11, 12)).splitlines()[-3:] == ["12 / 11 = 12/11", "11 / 12 = 11/12", "impossible"]
    assert gt.value_reply((4, 4, 10), random.Random(1)) == "10 - 4 = 6, 6 * 4 = 24\nsure"
    assert gt.value_reply((Fraction(8, 3), 3, 8), random.Random(0)).endswith("8 / 1/3 = 24\nlikely")
    assert gt.value_reply((24,)) == "sure" and gt.value_reply((4, 4, 10), tries=0) == "sure"
    rng = random.Random(3)
    states = [s.left for m in [(1, 1, 2, 3), (4, 4, 6, 8), (3, 3, 8, 8), (1, 5, 9, 13), (2, 7, 11, 13)]
              for s in g.next_steps(m)]
    for st in states + [s.left for t in states for s in g.next_steps(t)]:
        _assert_worked_value(st, gt.value_reply(st, rng))
    # One-word replies, the recipe before worked values, stay available.
    convs = gt.training_conversations(_small_cfg(worked_values=False))
    assert {c.messages[-1]["content"] for c in convs if c.meta["kind"] == "value"} <= set(gt.VALUE_WORDS)


def test_value_share_per_size():
    cfg = _small_cfg(n_value=(400, 0, 0), value_positive_share=(0.25, 0.4, 0.4))
    labels = [gt.parse_value(c.messages[-1]["content"]) for c in gt.training_conversations(cfg) if c.meta["kind"] == "value"]
    assert 0.15 < sum(lab != "impossible" for lab in labels) / len(labels) < 0.35
    assert gt.Game24DataConfig(value_positive_share=0.3).value_shares() == (0.3, 0.3, 0.3)
    with pytest.raises(LlmlabError):
        gt.Game24DataConfig(value_positive_share=(0.3, 1.5, 0.2)).validate()


def test_reply_parsers():
    assert gt.parse_value("10 + 14 = 24\nsure") == "sure"
    assert gt.parse_value("likely... no, impossible") == "impossible"
    assert gt.parse_value("no idea") is None
    assert gt.parse_answer("4 + 8 = 12 (left: 4 6 12)\nAnswer: (6 - 4) * (4 + 8) = 24\n") == "(6 - 4) * (4 + 8) = 24"
    steps = gt.parse_proposals("1. 4 + 8 = 12 (left: 4 6 12)\n- 6 - 4 = 2 (left: 2 4 8)\nnonsense\n"
                               "4 + 8 = 12 (left: 4 6 12)")
    assert [str(s) for s in steps] == ["4 + 8 = 12 (left: 4 6 12)", "6 - 4 = 2 (left: 2 4 8)"]
