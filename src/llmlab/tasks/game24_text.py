"""The Game of 24 as conversations: the prompts every strategy asks, the replies' formats, their parsers, and
the training data (solver-made) that teaches a small model all of them.

    from llmlab.tasks import game24_text as g
    g.cot_messages((4, 4, 6, 8))      # [{"role": "user", "content": "Make 24 with 4 4 6 8. Think step by step."}]
    g.parse_proposals("4 + 8 = 12 (left: 4 6 12)\\n...")   # [Step, ...] as the model wrote them
    convs = g.training_conversations(Game24DataConfig(seed=0))   # list[Conversation], never a test game

Six kinds of question, one per step of the strategies in ``llmlab.reason`` (the Tree-of-Thoughts paper's
prompts, shortened for a small model that learns them; an instruction-tuned endpoint model follows the format
from the wording and the parsers' tolerance):

    io       Make 24 with 4 4 6 8. Give only the answer.    -> (6 - 4) * (4 + 8) = 24
    cot      Make 24 with 4 4 6 8. Think step by step.      -> <|think|>three steps<|/think|>(6 - 4) * (4 + 8) = 24
    propose  Possible next steps for 4 4 6 8:               -> 4 + 8 = 12 (left: 4 6 12)   (one move; sampled)
    value    Can 4 6 12 make 24? sure, likely or impossible -> 6 - 4 = 2, 12 * 2 = 24 / sure
         (a few tries worked out, then the verdict: ``value_reply``; two numbers: each move until one makes 24)
    answer   Make 24 with 4 4 6 8. Steps: ... Answer:       -> 6 - 4 = 2 / 4 + 8 = 12 / (6 - 4) * (4 + 8) = 24
         (each step with the earlier steps' expressions put in: ``answer_reply``; the last line is the answer)
    judge    Is this right for 4 4 6 8? sure or impossible  -> uses 4 4 6 8, puzzle 4 4 6 8: same numbers / 6 - 4 = 2 / ... / sure
         (the numbers the answer uses, then its arithmetic line by line, then the verdict: ``judge_reply``)

Training data (``training_conversations``) comes from the solver and the checker in ``game24.py``: random
solutions of training puzzles for io/cot/answer, a uniformly random move of ``next_steps`` for propose (so
the model's samples spread over every legal move; a search samples several and keeps the distinct ones: the
paper's "sample" way of generating thoughts, where its GPT-4 listed several in one reply), ``value_label``
for value, and the checker for judge. Every four-number puzzle it uses passes ``assert_trainable``, which refuses the 100
test games (by multiset) and any held-out validation puzzles, so nothing downstream can train on them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

from llmlab.errors import LlmlabError
from llmlab.tasks.game24 import (Step, check_answer, expression_from_steps, expression_lines, fmt, format_numbers,
                                 is_test, load_puzzles, next_steps, parse_step, reachable, solve, value_label,
                                 worked_steps)

VALUE_WORDS = ("sure", "likely", "impossible")
KINDS = ("io", "cot", "propose", "value", "answer", "judge")


# ----------------------------------------------------------------------------------------------------------
# Prompts (chat messages) and reply formats


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _nums(numbers) -> str:
    """Numbers as the prompts write them; a string (a state as a model wrote it) is taken as it is."""
    return numbers.strip() if isinstance(numbers, str) else format_numbers(numbers)


def io_messages(numbers) -> list[dict]:
    return _user(f"Make 24 with {_nums(numbers)}. Give only the answer.")


def cot_messages(numbers) -> list[dict]:
    return _user(f"Make 24 with {_nums(numbers)}. Think step by step.")


def propose_messages(state) -> list[dict]:
    return _user(f"Possible next steps for {_nums(state)}:")


def value_messages(state) -> list[dict]:
    return _user(f"Can {_nums(state)} make 24? sure, likely or impossible")


def answer_messages(numbers, steps: Sequence[str]) -> list[dict]:
    body = "\n".join(str(s) for s in steps)
    return _user(f"Make 24 with {_nums(numbers)}. Steps:\n{body}\nAnswer:")


def judge_messages(numbers, answer: str) -> list[dict]:
    return _user(f"Is this right for {_nums(numbers)}? sure or impossible\n{answer}")


def judge_reply(numbers, answer: str, compare: bool = True) -> str:
    """The judge's worked reply: the numbers the answer uses (ascending) and, with ``compare``, the puzzle's
    beside them and whether they are the same (``uses 3 4 7 10, puzzle 3 4 7 11: different numbers``), its
    arithmetic one operation a line (``game24.worked_steps``), then ``sure`` when it uses exactly the puzzle's
    numbers and makes 24, else ``impossible``. A small model cannot see at a glance that ``9 + 9 + 12 - 8`` is
    22, nor that an answer uses a 10 the puzzle lacks; written out, each line is one thing it can do."""
    worked = worked_steps(answer)
    verdict = "sure" if check_answer(numbers, answer).ok else "impossible"
    if worked is None:
        return f"cannot read it\n{verdict}"
    used, lines = worked
    first = f"uses {format_numbers(used)}"
    if compare:
        puzzle = sorted(int(x) for x in (numbers.split() if isinstance(numbers, str) else numbers))
        first += f", puzzle {format_numbers(puzzle)}: {'same' if used == puzzle else 'different'} numbers"
    return "\n".join([first, *lines, verdict])


def answer_reply(numbers, steps: Sequence[Step]) -> str:
    """The answer step's worked reply: each step with the numbers earlier steps made replaced by their
    expressions (``game24.expression_lines``), so the last line is the answer: ``7 - 2 = 5`` /
    ``7 - 2 + 1 = 6`` / ``(7 - 2 + 1) * 4 = 24``. Written in one go, a small model's answer often drops or
    repeats a number of a right path (docs/LOG.md, 2026-12-06); one substitution a line is a copy it can do."""
    return "\n".join(expression_lines(numbers, steps))


def _op_text(step: Step) -> str:
    """``10 - 4 = 6``: a step without its ``(left: ...)``."""
    return f"{fmt(step.a)} {step.op} {fmt(step.b)} = {fmt(step.result)}"


def _try_text(first: Step, second: Step) -> str:
    return f"{_op_text(first)}, {_op_text(second)}"


def _nearest(state) -> Step:
    """The move of a two-number state whose result is nearest 24 (ties: the first in ``next_steps`` order)."""
    return min(next_steps(state), key=lambda s: abs(s.result - 24))


def value_reply(state, rng: random.Random | None = None, tries: int = 3) -> str:
    """The value step's worked reply: the state worked out, then ``value_label``'s verdict (the solver's).

    Two numbers: every move of ``next_steps`` one a line, ending at the first that makes 24
    (``12 + 2 = 14 / 12 - 2 = 10 / 12 * 2 = 24 / sure``). Three numbers: up to ``tries`` tries of two moves,
    the second the one nearest 24 (``10 - 4 = 6, 6 * 4 = 24``); a state that can make 24 gets 0..tries-1
    failing tries (first moves that cannot make 24), then a solution's try, preferring whole numbers (the
    solver's); one that cannot gets ``tries`` failing tries. So the reply says "sure" right after a try made 24
    and "impossible" after ``tries`` that did not: every line is one operation a small model can check, and
    the verdict follows from them. One number (and ``tries=0``, the one-word recipe): the label alone."""
    rng = rng or random.Random(0)
    label = value_label(state)
    nums = tuple(Fraction(x) for x in state)
    if len(nums) == 2:
        lines = []
        for st in next_steps(nums):
            lines.append(_op_text(st))
            if st.result == 24:
                break
        return "\n".join(lines + [label])
    if len(nums) != 3 or tries < 1:
        return label
    moves = next_steps(nums)
    dead = [m for m in moves if not reachable(m.left)]
    failing = tries if label == "impossible" else rng.randrange(tries)
    lines = [_try_text(m, _nearest(m.left)) for m in rng.sample(dead, min(failing, len(dead)))]
    if label != "impossible":
        first, second = solve(nums, rng)
        lines.append(_try_text(first, second))
    return "\n".join(lines + [label])


def steps_text(steps: Sequence[Step]) -> str:
    return "\n".join(str(s) for s in steps)


# ----------------------------------------------------------------------------------------------------------
# Parsing replies (the model's own words: nothing is recomputed)


def parse_proposals(text: str) -> list[Step]:
    """The step lines of a propose reply, as written, duplicates dropped; other lines are ignored (a list
    marker or numbering in front is tolerated)."""
    out, seen = [], set()
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)
        step = parse_step(line)
        if step is not None and str(step) not in seen:
            seen.add(str(step))
            out.append(step)
    return out


def parse_value(text: str) -> str | None:
    """The judgement in a value/judge reply: the last of sure/likely/impossible it says (None if none)."""
    words = re.findall(r"\b(sure|likely|impossible)\b", text.lower())
    return words[-1] if words else None


def parse_answer(text: str) -> str:
    """The answer expression in a reply: its last line that has an ``=`` (or its last non-empty line), with an
    ``Answer:`` label dropped. The checker judges what this returns."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    pick = next((ln for ln in reversed(lines) if "=" in ln and "left:" not in ln), lines[-1])
    return re.sub(r"^\s*answer\s*:\s*", "", pick, flags=re.IGNORECASE).strip()


# ----------------------------------------------------------------------------------------------------------
# Training data (solver-made labels; never a test game)


@dataclass
class Game24DataConfig:
    """How many conversations of each kind ``training_conversations`` makes (and from which puzzles)."""

    seed: int = 0
    n_io: int = 3000
    n_cot: int = 8000
    n_propose: tuple[int, int, int] = (8000, 12000, 8000)  # states of 4, 3 and 2 numbers
    n_value: tuple[int, int, int] = (30000, 20000, 1000)  # states of 3, 2 and 1 numbers
    # Share of sure/likely states among the value questions (the rest impossible), per size as n_value (a single
    # number applies to every size). Tried: 0.25 for three numbers with 45k of them (near the ~20% of a hard
    # puzzle's first moves that can still make 24): ToT b=5 found a right answer in fewer test games (68% vs 75%,
    # one run each, with other changes; docs/LOG.md, issue 30), so 0.4 stays.
    value_positive_share: float | tuple[float, float, float] = (0.4, 0.4, 0.4)
    propose_positive_share: float = 0.75  # share of reachable states among propose questions (what a search expands)
    # Value replies work the state out before the verdict (``value_reply``: two numbers' moves, three numbers'
    # tries); False: the verdict alone, one word (the recipe before 2026-12-06).
    worked_values: bool = True
    value_tries: int = 3  # three numbers: tries of two moves in a worked value reply
    n_answer: int = 5000
    # The answer reply builds the expression one step a line (``answer_reply``); False: the expression alone.
    worked_answers: bool = True
    n_judge: int = 18000  # half right answers, half wrong ones of the kinds in JUDGE_WRONG (hard near misses)
    judge_positive_share: float = 0.5
    # The judge's first line says "same/different numbers" (``judge_reply``). Measured: the model writes both
    # lists right and still says "same numbers" for 49 of 50 answers with a foreign number (4 of 50 refused
    # without the line; docs/LOG.md, 2026-12-06); kept because the measured default recipe has it. Crossing each
    # number off one by one (commit d403278, reverted) made the judge alone right on 49 of 50 such answers, but
    # ToT b=5 on the validation puzzles was not better (mean 77.2% vs 78.4%).
    judge_compares_numbers: bool = True
    # Puzzles kept out of training besides the test games (a validation set for tuning the search); by rank.
    holdout_ranks: tuple[int, ...] = tuple(range(1001, 1051))
    state_sources: int = 0  # propose/value states grow from this many random multisets (0 = all; tests use few)

    def validate(self) -> None:
        counts = [self.n_io, self.n_cot, *self.n_propose, *self.n_value, self.n_answer, self.n_judge, self.value_tries]
        shares = (*self.value_shares(), self.propose_positive_share, self.judge_positive_share)
        if min(counts) < 0 or not all(0 <= x <= 1 for x in shares):
            raise LlmlabError("invalid game24 data config: counts must be >= 0 and the positive shares in [0, 1]")

    def value_shares(self) -> tuple[float, float, float]:
        v = self.value_positive_share
        return (float(v),) * 3 if isinstance(v, (int, float)) else tuple(v)


def holdout_puzzles(cfg: Game24DataConfig) -> set[tuple[int, ...]]:
    ranks = set(cfg.holdout_ranks)
    return {p.numbers for p in load_puzzles() if p.rank in ranks}


def assert_trainable(numbers, holdout: set[tuple[int, ...]] = frozenset()) -> None:
    """Refuse a four-number puzzle that is a test game (any order) or held out: ``LlmlabError``."""
    key = tuple(sorted(int(x) for x in numbers))
    if is_test(key):
        raise LlmlabError(f"puzzle {format_numbers(key)} is one of the 100 test games (ranks 901-1000); "
                          "it may never be trained on")
    if key in holdout:
        raise LlmlabError(f"puzzle {format_numbers(key)} is held out for validation")


def trainable_multisets(cfg: Game24DataConfig) -> list[tuple[int, ...]]:
    """Every four-number multiset of 1..13 (solvable or not) that is neither a test game nor held out."""
    from itertools import combinations_with_replacement

    holdout = holdout_puzzles(cfg)
    return [m for m in combinations_with_replacement(range(1, 14), 4) if not is_test(m) and m not in holdout]


def _conv(messages: list[dict], reply, kind: str, **meta):
    from llmlab.chat.data import Conversation

    return Conversation(messages + [{"role": "assistant", "content": reply}], {"kind": kind, **meta})


def training_conversations(cfg: Game24DataConfig | None = None,
                           puzzles: Iterable[Sequence[int]] | None = None) -> list:
    """Conversations of every kind (``Conversation.meta["kind"]``), shuffled. ``puzzles`` (default: the paper's
    puzzles minus the test games and the holdout) are the solvable four-number puzzles io/cot/answer/judge
    draw from; every one is checked with ``assert_trainable`` (a test game raises ``LlmlabError``)."""
    cfg = cfg or Game24DataConfig()
    cfg.validate()
    rng = random.Random(cfg.seed)
    holdout = holdout_puzzles(cfg)
    if puzzles is None:
        puzzles = [p.numbers for p in load_puzzles() if not is_test(p.numbers) and p.numbers not in holdout]
    solvable = [tuple(sorted(int(x) for x in p)) for p in puzzles]
    for p in solvable:
        assert_trainable(p, holdout)
    solvable = [p for p in solvable if reachable(p)]
    if not solvable:
        raise LlmlabError("no solvable training puzzles")
    every = trainable_multisets(cfg)  # propose and value states grow from all of them, solvable or not
    if cfg.state_sources:
        every = rng.sample(every, min(cfg.state_sources, len(every)))
    for m in every:
        assert_trainable(m, holdout)
    out = []

    def solution(p):
        steps = solve(p, rng)
        return steps, expression_from_steps(p, steps)

    for _ in range(cfg.n_io):
        p = rng.choice(solvable)
        out.append(_conv(io_messages(p), solution(p)[1], "io", puzzle=format_numbers(p)))
    for _ in range(cfg.n_cot):
        p = rng.choice(solvable)
        steps, expr = solution(p)
        reply = [{"type": "think", "text": steps_text(steps)}, {"type": "text", "text": expr}]
        out.append(_conv(cot_messages(p), reply, "cot", puzzle=format_numbers(p)))
    for _ in range(cfg.n_answer):
        p = rng.choice(solvable)
        steps, expr = solution(p)
        reply = answer_reply(p, steps) if cfg.worked_answers else expr
        out.append(_conv(answer_messages(p, steps), reply, "answer", puzzle=format_numbers(p)))
    solvable_set = set(solvable)
    for _ in range(cfg.n_judge):
        p = rng.choice(solvable)
        if rng.random() < cfg.judge_positive_share:
            answer, how = solution(p)[1], "right"
        else:
            how = rng.choice(JUDGE_WRONG)
            answer = _wrong_answer(p, rng, how, solvable_set)
        # The verdict is the checker's, whatever the kind meant to make.
        reply = judge_reply(p, answer, cfg.judge_compares_numbers)
        out.append(_conv(judge_messages(p, answer), reply, "judge", puzzle=format_numbers(p), wrong=how))

    states = _states(every, rng)
    for size, n in zip((4, 3, 2), cfg.n_propose):
        for _ in range(n):
            s = rng.choice(every) if size == 4 else _pick_state(states[size], rng, cfg.propose_positive_share)
            out.append(_conv(propose_messages(s), str(rng.choice(next_steps(s))), "propose", size=size))
    for size, n, share in zip((3, 2, 1), cfg.n_value, cfg.value_shares()):
        for _ in range(n):
            s = _pick_state(states[size], rng, share)
            reply = value_reply(s, rng, cfg.value_tries) if cfg.worked_values else value_label(s)
            out.append(_conv(value_messages(s), reply, "value", size=size))
    rng.shuffle(out)
    return out


def _states(every: list[tuple[int, ...]], rng: random.Random) -> dict[int, tuple[list, list]]:
    """The states a search meets, split into (can make 24, cannot): ``{size: (positive, negative)}``.
    Three numbers: every move's result from the trainable multisets (what the first level values). Two
    numbers: the moves from the *reachable* three-number states, since a search expands the states it values
    well (an unreachable state's children are mostly large numbers and fractions no search keeps). One
    number: 24 against the results of moves from a sample of the two-number states."""
    three = sorted({st.left for m in every for st in next_steps(m)})
    three_ok = [s for s in three if reachable(s)]
    two = sorted({st.left for s in three_ok for st in next_steps(s)})
    one = sorted({st.left for s in rng.sample(two, min(len(two), 3000)) for st in next_steps(s)} - {(Fraction(24),)})
    out = {}
    for size, level in ((3, three), (2, two)):
        flags = [reachable(s) for s in level]
        out[size] = ([s for s, f in zip(level, flags) if f], [s for s, f in zip(level, flags) if not f])
    out[1] = ([(Fraction(24),)], one)
    return out


def _pick_state(split: tuple[list, list], rng: random.Random, positive_share: float):
    pos, neg = split
    return rng.choice(pos if pos and (not neg or rng.random() < positive_share) else neg)


# The wrong answers the judge learns to refuse. The search's wrong answers come from proposals with wrong
# arithmetic or a wrong state, so most are near misses: the puzzle's numbers in an expression that is not 24,
# an expression that is 24 with a number changed, a right one with one operator changed.
JUDGE_WRONG = (
    "random",    # random moves to a number that is not 24, written as an answer
    "operator",  # a right answer with one operator changed
    "neighbour",  # a right answer of a puzzle one number away, with this puzzle's number put back (not 24)
    "number",    # a right answer with one number changed: to another of the puzzle's (used twice) or +-1..3
    "foreign",   # a right answer of a puzzle one number away, as it is (24, but not these numbers)
    "close",     # random moves that end near 24 (20..28, e.g. 23 or 25), written as = 24
)

_NUM = re.compile(r"\d+")
_OP = re.compile(r"(?<=\S) ([-+*/]) (?=\S)")


def _wrong_answer(p: tuple[int, ...], rng: random.Random, how: str = "random",
                  solvable: set[tuple[int, ...]] | frozenset = frozenset()) -> str:
    """A plausible wrong answer to ``p`` of kind ``how`` (``JUDGE_WRONG``). Usually wrong, not always (a
    changed operator can still make 24): the label comes from the checker, never from the kind."""
    if how in ("operator", "number"):
        expr = expression_from_steps(p, solve(p, rng)).rsplit(" = ", 1)[0]
        if how == "operator":
            ops = list(_OP.finditer(expr))
            m = rng.choice(ops)
            new = rng.choice([o for o in "+-*/" if o != m.group(1)])
            return f"{expr[:m.start(1)]}{new}{expr[m.end(1):]} = 24"
        nums = list(_NUM.finditer(expr))
        m = rng.choice(nums)
        old = int(m.group())
        others = [int(x.group()) for x in nums if x is not m and int(x.group()) != old]
        if others and rng.random() < 0.5:
            new = rng.choice(others)
        else:
            new = max(1, old + rng.choice((-3, -2, -1, 1, 2, 3)))
        return f"{expr[:m.start()]}{new}{expr[m.end():]} = 24"
    if how in ("neighbour", "foreign"):
        for _ in range(50):
            i = rng.randrange(4)
            new = rng.randint(1, 13)
            q = tuple(sorted(p[:i] + (new,) + p[i + 1:]))
            if new == p[i] or q not in solvable:  # only trainable puzzles lend their solutions
                continue
            expr = expression_from_steps(q, solve(q, rng)).rsplit(" = ", 1)[0]
            if how == "foreign":
                return f"{expr} = 24"
            nums = [m for m in _NUM.finditer(expr) if int(m.group()) == new]
            m = rng.choice(nums)
            return f"{expr[:m.start()]}{p[i]}{expr[m.end():]} = 24"
        how = "random"
    near = how == "close"
    for _ in range(400 if near else 100):
        state, steps = tuple(Fraction(x) for x in p), []
        while len(state) > 1:
            step = rng.choice(next_steps(state))
            steps.append(step)
            state = step.left
        if state[0] != 24 and (not near or abs(state[0] - 24) <= 4):
            return expression_from_steps(p, steps).rsplit(" = ", 1)[0] + " = 24"
    return format_numbers(p).replace(" ", " + ") + " = 24"
