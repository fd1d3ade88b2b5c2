"""The strategies on a scripted generator, so the search logic is tested deterministically: BFS keeps the top
b states of every level (and proposes only from them), DFS tries the best child first, prunes, backtracks and
stops at an accepted answer, self-consistency votes over normalised answers, values are cached, the checker
only scores after the search, and endpoint errors are recorded without stopping the run.

    .venv/bin/pytest tests/reason/test_strategies.py -q
"""

import re

import pytest

from llmlab.reason.generators import Completion
from llmlab.reason.strategies import StrategyConfig, majority_vote, score, solve_batch, tot_bfs, tot_dfs
from llmlab.reason.tasks import get_task
from llmlab.tasks import game24 as g
from llmlab.tasks import game24_text as gt

TASK = get_task("game24")


class Scripted:
    """A generator whose reply to a prompt is ``reply(user_text, sample_index)``; it records every call."""

    name = "scripted"

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[tuple[list[str], int]] = []

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=()):
        texts = [p[-1]["content"] for p in prompts]
        self.calls.append((texts, n))
        out = []
        for t in texts:
            out.append([r if isinstance(r, Completion) else Completion(r, tokens=3)
                        for r in (self.reply(t, j) for j in range(n))])
        return out


def _state(text: str) -> tuple:
    return tuple(g.parse_number(x) for x in text.split())


def oracle(value=None, answer=None):
    """A "perfect" model made of the solver (tests only): proposals are every move, values are the true labels
    unless ``value(state_text)`` says otherwise, answers are spelled from the path, judgements are the checker's."""

    def reply(text: str, j: int) -> str:
        if text.startswith("Possible next steps for "):
            return gt.steps_text(g.next_steps(_state(text[len("Possible next steps for "):-1])))
        if text.startswith("Can "):
            state = text[4:].split(" make 24")[0]
            return (value(state) if value else None) or g.value_label(_state(state))
        if "Steps:" in text:
            nums = text.split("Make 24 with ")[1].split(".")[0]
            steps = gt.parse_proposals(text.split("Steps:\n")[1])
            return answer(nums, steps) if answer else g.expression_from_steps(g.parse_puzzle(nums), steps)
        if text.startswith("Is this right for "):
            nums, ans = re.match(r"Is this right for (.*?)\? sure or impossible\n(.*)", text).groups()
            return "sure" if g.check_answer(nums, ans).ok else "impossible"
        raise AssertionError(f"unexpected prompt {text!r}")

    return reply


def test_bfs_with_a_perfect_model_solves_every_puzzle():
    puzzles = [p.numbers for p in g.test_puzzles()[:6]]
    gen = Scripted(oracle())
    atts = tot_bfs(gen, TASK, puzzles, StrategyConfig(method="tot", breadth=2, n_evaluate=1))
    score(TASK, atts)
    assert all(a.ok for a in atts), [(a.puzzle, a.answer, a.reason) for a in atts]
    # Lockstep: each level is one propose batch and one value batch for all six puzzles; then answers, judgements.
    assert len(gen.calls) == 3 * 2 + 2
    assert len(gen.calls[0][0]) == 6  # the six roots proposed in one batch


def test_bfs_keeps_the_top_b_states_and_proposes_only_from_them():
    puzzle = (1, 2, 3, 4)
    kids = [str(s) for s in g.next_steps(puzzle)]
    states = [g.format_numbers(s.left) for s in g.next_steps(puzzle)]
    # The model's own (wrong) values: sure for kids 5 and 9, likely for 2 and 7, impossible for the rest.
    vals = {states[5]: "sure", states[9]: "sure", states[2]: "likely", states[7]: "likely"}
    gen = Scripted(oracle(value=lambda s: vals.get(s, "impossible") if s in states else None))
    (att,) = tot_bfs(gen, TASK, [puzzle], StrategyConfig(method="tot", breadth=3, n_evaluate=2))
    level1 = [n for n in att.tree.nodes if n.depth == 1]
    assert [n.text for n in level1] == kids
    kept = [n for n in level1 if n.selected]
    # Ranked by value, ties in the model's order: sure(5), sure(9), then the first likely (2).
    assert [n.text for n in kept] == [kids[2], kids[5], kids[9]]
    assert [n.value for n in kept] == [2.0, 40.0, 40.0]
    proposed = gen.calls[2][0]  # call 0: root proposals, 1: their values, 2: level-2 proposals
    assert sorted(proposed) == sorted(f"Possible next steps for {states[i]}:" for i in (5, 9, 2))
    # Every level keeps at most b states; children exist only under kept nodes.
    for d in (1, 2, 3):
        assert sum(n.selected for n in att.tree.nodes if n.depth == d and n.kind == "step") <= 3
    for n in att.tree.nodes:
        if n.parent is not None and n.depth > 1:
            assert att.tree.nodes[n.parent].selected


def test_bfs_keeps_one_node_per_state():
    # 1 2 3 4: "2 * 1 = 2 (left: 2 3 4)" and "2 / 1 = 2 (left: 2 3 4)" leave the same numbers.
    replies = {"Possible next steps for 1 2 3 4:": "2 * 1 = 2 (left: 2 3 4)\n2 / 1 = 2 (left: 2 3 4)\n"
                                                   "4 - 3 = 1 (left: 1 1 2)"}
    gen = Scripted(lambda text, j: replies.get(text) or ("sure" if text.startswith("Can ") else ""))
    for distinct, want in ((True, ["2 * 1 = 2 (left: 2 3 4)", "4 - 3 = 1 (left: 1 1 2)"]),
                           (False, ["2 * 1 = 2 (left: 2 3 4)", "2 / 1 = 2 (left: 2 3 4)"])):
        (att,) = tot_bfs(gen, TASK, [(1, 2, 3, 4)], StrategyConfig(method="tot", breadth=2, distinct_states=distinct))
        assert [n.text for n in att.tree.nodes if n.depth == 1 and n.selected] == want


def test_dfs_backtracks_from_a_dead_end():
    puzzle = (1, 2, 3, 4)
    steps = g.next_steps(puzzle)
    dead = next(s for s in steps if not g.reachable(s.left))
    good = next(s for s in steps if g.reachable(s.left))
    dead_state, good_state = g.format_numbers(dead.left), g.format_numbers(good.left)
    first_level = {g.format_numbers(s.left) for s in steps}

    def value(state):
        if state in first_level:  # at the first level the model is wrong about the dead end and unsure of the rest
            return {dead_state: "sure", good_state: "likely"}.get(state, "impossible")
        return None  # deeper: the true labels (the dead end's children are all impossible)

    gen = Scripted(oracle(value=value))
    att = tot_dfs(gen, TASK, puzzle, StrategyConfig(method="tot", search="dfs", n_evaluate=1))
    score(TASK, att and [att])
    assert att.ok
    visited = sorted((n for n in att.tree.nodes if n.order >= 0), key=lambda n: n.order)
    level1 = [n.text for n in visited if n.depth == 1]
    assert level1[:2] == [str(dead), str(good)]  # the dead end first, then back up to the next best
    dead_node = next(n for n in att.tree.nodes if n.text == str(dead))
    assert att.tree.children(dead_node) and all(c.order < 0 for c in att.tree.children(dead_node))  # pruned
    assert not dead_node.selected and next(n for n in att.tree.nodes if n.text == str(good)).selected
    assert att.tree.meta["expansions"] == 1 + 1 + 3 - 1  # root, the dead end, then good's path of two more


def test_dfs_answer_must_be_judged_sure():
    # The answer writer is wrong the first time; the judge says so and the search goes on to the next path.
    written = []

    def answer(nums, steps):
        written.append(steps)
        expr = g.expression_from_steps(g.parse_puzzle(nums), steps)
        return expr if len(written) > 1 else expr.replace("+", "-", 1).replace("*", "+", 1)

    gen = Scripted(oracle(answer=answer))
    att = tot_dfs(gen, TASK, (1, 2, 3, 4), StrategyConfig(method="tot", search="dfs", n_evaluate=1))
    score(TASK, [att])
    assert len(written) == 2 and att.ok
    assert [c["ok"] for c in att.candidates] == [True, False]


def test_self_consistency_votes_over_normalised_answers():
    replies = ["<|think|>x<|/think|>(1 + 2 + 3) * 4 = 24", "<|think|>y<|/think|>1 * 2 * 3 * 4 = 24",
               "<|think|>z<|/think|>4 * (3 + 2 + 1)", "<|think|>never closed", "<|think|>w<|/think|>1 * 2 * 3 * 4"]
    gen = Scripted(lambda text, j: replies[j])
    (att,) = solve_batch(gen, TASK, [(1, 2, 3, 4)], StrategyConfig(method="cot-sc", samples=5))
    assert gen.calls == [(["Make 24 with 1 2 3 4. Think step by step."], 5)]
    assert att.answer == "(1 + 2 + 3) * 4 = 24"  # 2 votes, tied with 1*2*3*4 but seen first
    assert [c.get("votes") for c in att.candidates[:2]] == [2, 2]
    score(TASK, [att])
    assert att.ok and att.sample_ok == pytest.approx(4 / 5)
    assert att.tokens == 5 * 3
    # Majority beats order: a wrong answer with three votes wins over a right one.
    ans, cands = majority_vote(TASK, ["1+2+3+4", "(1+2+3)*4", "4+3+2+1", "2+1+3+4"])
    assert ans == "1+2+3+4" and cands[0]["votes"] == 3


def test_cot_hides_the_thought_and_io_answers_directly():
    gen = Scripted(lambda text, j: ("<|think|>1 + 2 = 3 (left: 3 3 4)<|/think|>(1 + 2 + 3) * 4 = 24"
                                    if "step by step" in text else "1 + 2 + 3 + 4 = 24"))
    cot, io = (solve_batch(gen, TASK, [(1, 2, 3, 4)], StrategyConfig(method=m))[0] for m in ("cot", "io"))
    score(TASK, [cot, io])
    assert cot.answer == "(1 + 2 + 3) * 4 = 24" and cot.thought == "1 + 2 = 3 (left: 3 3 4)" and cot.ok
    assert not io.ok and io.reason == "it makes 10, not 24"


def test_values_are_cached_across_the_search():
    gen = Scripted(oracle())
    cache = {}
    tot_bfs(gen, TASK, [(1, 2, 3, 4)], StrategyConfig(method="tot", breadth=1, n_evaluate=3), cache)
    asked = [t for texts, n in gen.calls if n == 3 for t in texts]
    assert len(asked) == len(set(asked))  # no value prompt twice
    before = len(gen.calls)
    tot_bfs(gen, TASK, [(1, 2, 3, 4)], StrategyConfig(method="tot", breadth=1, n_evaluate=3), cache)
    assert not [t for texts, n in gen.calls[before:] if n == 3 for t in texts]  # every value from the cache


def test_the_judge_has_its_own_temperature():
    """``judge_temperature`` applies to the judgements of final answers only; the values keep theirs."""

    class Recording(Scripted):
        def generate(self, prompts, *, n=1, temperature=0.0, **kw):
            self.temps = getattr(self, "temps", []) + [(prompts[0][-1]["content"].split()[0], n, temperature)]
            return super().generate(prompts, n=n, temperature=temperature, **kw)

    gen = Recording(oracle())
    atts = tot_bfs(gen, TASK, [(1, 2, 3, 4)], StrategyConfig(method="tot", breadth=2, n_evaluate=3,
                                                             judge_temperature=0.0))
    score(TASK, atts)
    assert atts[0].ok
    assert ("Can", 3, 1.0) in gen.temps and ("Is", 1, 0.0) in gen.temps  # values sampled, the judge greedy
    judged = [c["value"] for c in atts[0].candidates]
    assert judged and judged[0] == 60.0  # one greedy "sure" counted n_evaluate times


def test_endpoint_errors_are_recorded_and_the_run_goes_on():
    bad = Completion("", 0, "error", "HTTP 500: boom")
    gen = Scripted(lambda text, j: bad if "1 1 4 6" in text else oracle()(text, j))
    atts = tot_bfs(gen, TASK, [(1, 1, 4, 6), (1, 2, 3, 4)], StrategyConfig(method="tot", breadth=2, n_evaluate=1))
    score(TASK, atts)
    assert atts[0].error == "HTTP 500: boom" and not atts[0].ok and atts[0].reason == "no answer"
    assert atts[1].error is None and atts[1].ok


def test_the_search_never_calls_the_checker(monkeypatch):
    calls = []
    real = TASK.check
    monkeypatch.setattr(TASK, "check", lambda *a: calls.append(a) or real(*a))
    atts = solve_batch(Scripted(oracle()), TASK, [(1, 2, 3, 4)], StrategyConfig(method="tot", breadth=2))
    assert calls == []
    score(TASK, atts)
    assert calls


def test_config_validation():
    from llmlab.errors import LlmlabError

    with pytest.raises(LlmlabError, match="method"):
        StrategyConfig(method="magic").validate()
    with pytest.raises(LlmlabError, match="breadth"):
        StrategyConfig(breadth=0).validate()


# ----------------------------------------------------------------------------------------------------------
# Arithmetic word problems: the same strategies, another task

ARITH = get_task("arith")
WORD = "Ann has 23 apples. She buys 3 bags of 12. She gives away 17. How many apples does Ann have now?"


def test_arith_self_consistency_votes_over_normalised_numbers():
    from llmlab.tasks.arith_word import parse_problem

    p = parse_problem(WORD)
    replies = ["<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 41<|/think|>41",
               "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 42<|/think|>42",
               "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 41<|/think|>41.",  # "41." and "41" are one answer
               "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 42<|/think|>42 apples",
               "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 42<|/think|>Answer: 42",
               "<|think|>3 * 12 = 36\n23 + 3"]  # ran out of tokens: no vote
    gen = Scripted(lambda text, j: replies[j])
    (att,) = solve_batch(gen, ARITH, [p], StrategyConfig(method="cot-sc", samples=6))
    assert gen.calls == [([WORD + " Think step by step."], 6)]
    assert att.answer == "42"  # three votes for 42 (as first spelt) against two for 41, though 41 came first
    assert [(c["answer"], c["votes"]) for c in att.candidates[:2]] == [("42", 3), ("41", 2)]
    score(ARITH, [att])
    assert att.ok and att.sample_ok == pytest.approx(3 / 6)
    # Greedy CoT and a direct answer go through the same task methods.
    gen = Scripted(lambda text, j: "<|think|>3 * 12 = 36\n23 + 36 = 59\n59 - 17 = 42<|/think|>\n42\n"
                   if "step by step" in text else "41")
    cot, io = (solve_batch(gen, ARITH, [p], StrategyConfig(method=m))[0] for m in ("cot", "io"))
    score(ARITH, [cot, io])
    assert cot.ok and cot.answer == "42" and cot.thought.endswith("59 - 17 = 42")
    assert not io.ok and io.reason == "41 is wrong"


def test_arith_has_no_tree_of_thoughts():
    from llmlab.errors import LlmlabError
    from llmlab.tasks.arith_word import parse_problem

    with pytest.raises(LlmlabError, match="supports io, cot, cot-sc only"):
        solve_batch(Scripted(lambda t, j: ""), ARITH, [parse_problem(WORD)], StrategyConfig(method="tot"))
