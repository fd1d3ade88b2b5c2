"""The Game of 24: use four numbers, each exactly once, and + - * / to make 24.

    llmlab reason check --task game24 --puzzle "4 9 10 13" --answer "(10-4)*(13-9)"

    from llmlab.tasks.game24 import check_answer, solve, next_steps, value_label, load_puzzles
    check_answer("4 9 10 13", "(10 - 4) * (13 - 9) = 24").ok           # True
    check_answer("3 3 8 8", "8 / (3 - 8 / 3)").ok                        # True: exact fractions
    steps = solve((4, 4, 6, 8))           # [4 + 4 = 8 (left: 6 8 8), ...] or None when unsolvable
    value_label((4, 6, 12))               # "sure" | "likely" | "impossible"
    load_puzzles()                        # the Tree-of-Thoughts paper's 1,362 puzzles, ranked by human time

The exact checker parses the answer with its own small recursive-descent parser (no ``eval``): integer
literals, ``+ - * /`` and parentheses, nothing else (no unary minus, no decimals, no powers), optionally
``Answer:`` in front and ``= 24`` behind. It evaluates in exact fractions, so ``8 / (3 - 8 / 3)`` is 24, and
checks that the numbers used are the puzzle's, each exactly once. A rejection says why in one line.

Steps use the paper's format, ``a op b = c (left: ...)``: a binary operation on two of the numbers left, its
result, and the numbers left after it (ascending). Fractions are written ``8/3`` (no spaces); operators have
a space on each side, so ``8 / 1/3 = 24`` reads unambiguously. ``next_steps`` lists the distinct moves of a
state the way the training data spells them (larger operand first; subtraction never goes negative, which
loses no solvable puzzle: all 1,362 stay solvable; both directions of division; one move per resulting set).

The solver (``reachable``, ``solve``, ``value_label``) exists to make training labels and to build puzzles.
It is never called inside a search strategy (``llmlab.reason``): the model proposes and judges there, and
this checker judges only final answers.

The paper's test set is ranks 901-1000 (``TEST_RANKS``). ``is_test`` compares multisets, so a generated
puzzle with the same numbers in another order is a test puzzle too; the training-data builders
(``llmlab.tasks.game24_text``) refuse them.
"""

from __future__ import annotations

import csv
import functools
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

from llmlab.errors import LlmlabError

TARGET = 24
MIN_NUMBER, MAX_NUMBER = 1, 13  # the cards of the game (and the range of the paper's puzzles)
NUMBERS_PER_PUZZLE = 4
TEST_RANKS = range(901, 1001)  # the paper's 100 test games
MAX_ANSWER_CHARS = 300  # longer "answers" are rejected before parsing
DATA_FILE = Path(__file__).with_name("data") / "game24.csv"

Number = Fraction


# ----------------------------------------------------------------------------------------------------------
# Numbers and puzzles


def fmt(x: Fraction | int) -> str:
    """``12`` for integers, ``8/3`` for fractions (``-8/3`` when negative)."""
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


_NUMBER_RE = re.compile(r"-?\d+(?:/\d+)?")


def parse_number(text: str) -> Fraction:
    """The inverse of ``fmt``; ``ValueError`` for anything else (a zero denominator included)."""
    text = text.strip()
    if not _NUMBER_RE.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    num, _, den = text.partition("/")
    if den and int(den) == 0:
        raise ValueError(f"zero denominator: {text!r}")
    return Fraction(int(num), int(den) if den else 1)


def parse_puzzle(text: str, *, lo: int = MIN_NUMBER, hi: int = MAX_NUMBER,
                 count: int = NUMBERS_PER_PUZZLE) -> tuple[int, ...]:
    """``"4 9 10 13"`` (spaces or commas) -> ``(4, 9, 10, 13)``, sorted. ``LlmlabError`` saying what is wrong
    for anything but ``count`` integers in ``[lo, hi]``."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if len(parts) != count:
        raise LlmlabError(f"a puzzle is {count} numbers, got {len(parts)} in {text.strip()!r}")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise LlmlabError(f"a puzzle is {count} whole numbers, got {text.strip()!r}") from None
    bad = [n for n in nums if not lo <= n <= hi]
    if bad:
        raise LlmlabError(f"number {bad[0]} is out of range (puzzles use {lo}..{hi}) in {text.strip()!r}")
    return tuple(sorted(nums))


def format_numbers(numbers: Iterable[Fraction | int]) -> str:
    return " ".join(fmt(x) for x in numbers)


def _key(numbers: Iterable[Fraction | int]) -> tuple[Fraction, ...]:
    return tuple(sorted(Fraction(x) for x in numbers))


# ----------------------------------------------------------------------------------------------------------
# The exact checker


@dataclass
class Check:
    ok: bool
    reason: str  # "" when ok
    value: Fraction | None = None  # what the expression evaluates to, when it does


class _ParseError(Exception):
    pass


_TOKEN_RE = re.compile(r"\s*(?:(\d+)|([-+*/()]))")


def _tokenize(expr: str) -> list[str]:
    tokens, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m:
            ch = expr[pos:].lstrip()[:1]
            what = "a decimal point" if ch == "." else repr(ch)
            raise _ParseError(f"{what} is not allowed (only whole numbers, + - * / and parentheses)")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ; factor := INT | '(' expr ')'.
    Nodes: ``("n", int)`` or ``(op, left, right)``."""

    def __init__(self, tokens: list[str]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self):
        if not self.tokens:
            raise _ParseError("the answer is empty")
        node = self.expr()
        if self.peek() is not None:
            raise _ParseError(f"unexpected {self.peek()!r} after a complete expression")
        return node

    def expr(self):
        node = self.term()
        while self.peek() in ("+", "-"):
            node = (self.take(), node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self.peek() in ("*", "/"):
            node = (self.take(), node, self.factor())
        return node

    def factor(self):
        tok = self.take()
        if tok is None:
            raise _ParseError("the expression ends too early")
        if tok.isdigit():
            return ("n", int(tok))
        if tok == "(":
            node = self.expr()
            if self.take() != ")":
                raise _ParseError("unbalanced parentheses")
            return node
        if tok == "-":
            raise _ParseError("unary minus is not allowed (only binary + - * /)")
        raise _ParseError(f"unexpected {tok!r}")


def _evaluate(node, lines: list[str] | None = None) -> Fraction:
    """The value of a parsed expression. ``lines`` (if given) gets one ``a op b = c`` line per operation,
    innermost first, left to right; a division by zero adds ``a / 0 = undefined`` and raises ZeroDivisionError."""
    if node[0] == "n":
        return Fraction(node[1])
    op, left, right = node
    a, b = _evaluate(left, lines), _evaluate(right, lines)
    if op == "+":
        c = a + b
    elif op == "-":
        c = a - b
    elif op == "*":
        c = a * b
    elif b == 0:
        if lines is not None:
            lines.append(f"{fmt(a)} / 0 = undefined")
        raise ZeroDivisionError
    else:
        c = a / b
    if lines is not None:
        lines.append(f"{fmt(a)} {op} {fmt(b)} = {fmt(c)}")
    return c


def _leaves(node) -> list[int]:
    return [node[1]] if node[0] == "n" else _leaves(node[1]) + _leaves(node[2])


def _strip_answer(answer: str) -> tuple[str, str | None]:
    """``(expression, right-hand side or None)`` from ``"Answer: expr = 24"``-like text."""
    text = answer.strip()
    text = re.sub(r"^answer\s*:\s*", "", text, flags=re.IGNORECASE)
    if "=" in text:
        left, _, right = text.partition("=")
        if "=" in right:
            raise _ParseError("more than one '='")
        return left, right.strip()
    return text, None


def parse_expression(answer: str):
    """The parse tree of an answer (``_ParseError`` with the reason when it does not parse)."""
    if len(answer) > MAX_ANSWER_CHARS:
        raise _ParseError(f"the answer is longer than {MAX_ANSWER_CHARS} characters")
    expr, rhs = _strip_answer(answer)
    if rhs is not None and rhs not in (str(TARGET), f"{TARGET}.0"):
        raise _ParseError(f"the answer claims '= {rhs}', not '= {TARGET}'")
    return _Parser(_tokenize(expr)).parse()


def check_answer(puzzle: str | Sequence[int], answer: str) -> Check:
    """Whether ``answer`` is a valid solution of ``puzzle`` (a string such as ``"4 9 10 13"`` or numbers)."""
    numbers = parse_puzzle(puzzle) if isinstance(puzzle, str) else tuple(sorted(int(x) for x in puzzle))
    try:
        tree = parse_expression(answer)
    except _ParseError as e:
        return Check(False, str(e))
    used = sorted(_leaves(tree))
    if used != list(numbers):
        return Check(False, _multiset_problem(list(numbers), used))
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        return Check(False, "division by zero")
    if value != TARGET:
        return Check(False, f"it makes {fmt(value)}, not {TARGET}", value)
    return Check(True, "", value)


def worked_steps(answer: str) -> tuple[list[int], list[str]] | None:
    """How an answer is worked out by hand: the numbers it uses (ascending) and one ``a op b = c`` line per
    operation, innermost first, left to right (``None`` when it does not parse). The judge's training replies
    (``game24_text.judge_reply``) are written from this, so the model checks an answer by computing it."""
    try:
        tree = parse_expression(answer)
    except _ParseError:
        return None
    lines: list[str] = []
    try:
        _evaluate(tree, lines)
    except ZeroDivisionError:
        pass  # the lines end at the division by zero
    return sorted(_leaves(tree)), lines


def _multiset_problem(want: list[int], used: list[int]) -> str:
    from collections import Counter

    w, u = Counter(want), Counter(used)
    extra = [n for n in sorted(u) if u[n] > w[n]]
    missing = [n for n in sorted(w) if u[n] < w[n]]
    if extra:
        n = extra[0]
        if not w[n]:
            return f"it uses {n}, which is not in the puzzle"
        return f"it uses {n} {_times(u[n])} but the puzzle has it {_times(w[n])}"
    n = missing[0]
    if not u[n]:
        return f"it does not use {n}"
    return f"it uses {n} {_times(u[n])} but the puzzle has it {_times(w[n])}"


def _times(k: int) -> str:
    return {1: "once", 2: "twice"}.get(k, f"{k} times")


def normalise_answer(answer: str) -> str:
    """A canonical key of an answer for majority votes: the parse tree in prefix form with the operands of +
    and * chains flattened and sorted, so ``(4+8)*(6-4)`` and ``(6 - 4) * (8 + 4) = 24`` vote together.
    Text that does not parse is its own key (lower case, spaces removed)."""
    try:
        tree = parse_expression(answer)
    except _ParseError:
        return "?" + re.sub(r"\s+", "", answer.lower())
    return _canon(tree)


def _canon(node) -> str:
    if node[0] == "n":
        return str(node[1])
    op = node[0]
    if op in "+*":
        parts: list[str] = []

        def flat(n):
            if n[0] == op:
                flat(n[1])
                flat(n[2])
            else:
                parts.append(_canon(n))

        flat(node)
        return f"{op}({','.join(sorted(parts))})"
    return f"{op}({_canon(node[1])},{_canon(node[2])})"


# ----------------------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class Step:
    """One move: ``a op b = result``, leaving ``left`` (ascending)."""

    a: Fraction
    op: str
    b: Fraction
    result: Fraction
    left: tuple[Fraction, ...]

    def __str__(self) -> str:
        return f"{fmt(self.a)} {self.op} {fmt(self.b)} = {fmt(self.result)} (left: {format_numbers(self.left)})"


_STEP_RE = re.compile(r"^\s*(-?\d+(?:/\d+)?)\s+([-+*/])\s+(-?\d+(?:/\d+)?)\s*=\s*(-?\d+(?:/\d+)?)\s*"
                      r"\(left:\s*([-\d/ ]*?)\s*\)\s*$")


def parse_step(line: str) -> Step | None:
    """A step line as written (``None`` when it is not one). Nothing is recomputed: a step whose arithmetic
    is wrong parses as written, since the search must see the model's own claims."""
    m = _STEP_RE.match(line)
    if not m:
        return None
    try:
        a, b, c = (parse_number(m.group(i)) for i in (1, 3, 4))
        left = tuple(parse_number(x) for x in m.group(5).split())
    except ValueError:
        return None
    if not left:
        return None
    return Step(a, m.group(2), b, c, left)


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction:
    return {"+": a + b, "-": a - b, "*": a * b}[op] if op != "/" else a / b


def next_steps(numbers: Iterable[Fraction | int]) -> list[Step]:
    """Every distinct move from a state, in the order the training data lists them: pairs of the ascending
    numbers in order, the larger operand first, ``+ - * /`` then the smaller divided by the larger; a move
    whose resulting set repeats an earlier one's is left out."""
    return list(_next_steps(_key(numbers)))


@functools.lru_cache(maxsize=1 << 18)
def _next_steps(nums: tuple[Fraction, ...]) -> tuple[Step, ...]:
    out, seen_pairs, seen_left = [], set(), set()
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            lo, hi = nums[i], nums[j]
            if (lo, hi) in seen_pairs:
                continue
            seen_pairs.add((lo, hi))
            rest = nums[:i] + nums[i + 1 : j] + nums[j + 1 :]
            moves = [(hi, "+", lo), (hi, "-", lo), (hi, "*", lo)]
            if lo != 0:
                moves.append((hi, "/", lo))
            if hi != 0 and hi != lo:
                moves.append((lo, "/", hi))
            for a, op, b in moves:
                r = _apply(a, op, b)
                left = _key(rest + (r,))
                if left in seen_left:
                    continue
                seen_left.add(left)
                out.append(Step(a, op, b, r, left))
    return tuple(out)


# ----------------------------------------------------------------------------------------------------------
# The solver: training labels and puzzle generation only (never inside a search)


@functools.lru_cache(maxsize=1 << 20)
def _reachable(state: tuple[Fraction, ...], integers_only: bool) -> bool:
    if len(state) == 1:
        return state[0] == TARGET
    return any(_reachable(s.left, integers_only) for s in _next_steps(state)
               if not integers_only or s.result.denominator == 1)


def reachable(numbers: Iterable[Fraction | int], integers_only: bool = False) -> bool:
    """Whether the numbers can still make 24 (with ``integers_only``: through whole-number results only)."""
    return _reachable(_key(numbers), integers_only)


def solve(numbers: Iterable[Fraction | int], rng: random.Random | None = None) -> list[Step] | None:
    """One solution as steps (``None`` when there is none). With ``rng`` a random one among the moves that
    keep 24 reachable, preferring whole-number results; without it the first in ``next_steps`` order."""
    state = _key(numbers)
    steps: list[Step] = []
    while len(state) > 1:
        good = [s for s in _next_steps(state) if _reachable(s.left, False)]
        if not good:
            return None
        whole = [s for s in good if _reachable(s.left, True)]
        pool = whole or good
        step = rng.choice(pool) if rng is not None else pool[0]
        steps.append(step)
        state = step.left
    return steps if state[0] == TARGET else None


def value_label(numbers: Iterable[Fraction | int]) -> str:
    """The judgement the value step is trained on: ``sure`` when 24 is reachable through whole-number
    results, ``likely`` when only through a fraction (harder to see), ``impossible`` when not at all."""
    state = _key(numbers)
    if _reachable(state, True):
        return "sure"
    if _reachable(state, False):
        return "likely"
    return "impossible"


# ----------------------------------------------------------------------------------------------------------
# Steps -> one expression

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _paren(expr: str, need: bool) -> str:
    return f"({expr})" if need else expr


def expression_lines(numbers: Iterable[int], steps: Sequence[Step]) -> list[str]:
    """Each step as an expression of the puzzle's numbers: the step with every operand that an earlier step made
    replaced by that step's expression (``4 + 8 = 12``, ``6 - 4 = 2``, ``(4 + 8) * (6 - 4) = 24``), with only
    the parentheses needed. The last line of a full solution is its answer. ``ValueError`` when a step uses a
    number that is not left."""
    pool: list[tuple[Fraction, str, int]] = [(Fraction(n), str(int(n)), 3) for n in numbers]  # value, text, precedence
    lines = []
    for step in steps:
        sides = []
        for operand in (step.a, step.b):
            idx = next((i for i, (v, _, _) in enumerate(pool) if v == operand), None)
            if idx is None:
                raise ValueError(f"step {step} uses {fmt(operand)}, which is not left")
            sides.append(pool.pop(idx))
        (_, ta, pa), (_, tb, pb) = sides
        p = _PREC[step.op]
        left = _paren(ta, pa < p)
        right = _paren(tb, pb < p or (pb == p and step.op in "-/"))  # a - (b + c), a / (b * c)
        pool.append((step.result, f"{left} {step.op} {right}", p))
        lines.append(f"{pool[-1][1]} = {fmt(step.result)}")
    return lines


def expression_from_steps(numbers: Iterable[int], steps: Sequence[Step]) -> str:
    """The answer a list of steps spells: ``(6 - 4) * (4 + 8) = 24``, with only the parentheses needed.
    ``ValueError`` when a step uses a number that is not left, or the steps do not use every number."""
    numbers = list(numbers)
    if len(steps) != len(numbers) - 1:
        raise ValueError("the steps do not use every number")
    return expression_lines(numbers, steps)[-1]


# ----------------------------------------------------------------------------------------------------------
# The paper's puzzles, the test set, and a generator


@dataclass(frozen=True)
class Puzzle:
    rank: int  # by human solve time, 1 = fastest; 0 for generated puzzles
    numbers: tuple[int, ...]  # ascending
    solved_rate: float | None = None  # share of people who solved it in the paper's data

    @property
    def text(self) -> str:
        return format_numbers(self.numbers)


def load_puzzles(path: str | Path | None = None) -> list[Puzzle]:
    """The ranked puzzles of the Tree-of-Thoughts paper (``Rank,Puzzles,...`` CSV; the bundled copy by default,
    MIT licence beside it in ``tasks/data/``)."""
    path = Path(path) if path else DATA_FILE
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise LlmlabError(f"{path}: puzzle file not found") from None
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            rank, text = int(row["Rank"]), row["Puzzles"]
        except (KeyError, TypeError, ValueError):
            raise LlmlabError(f"{path}:{i}: expected columns 'Rank' and 'Puzzles'") from None
        rate = (row.get("Solved rate") or "").strip().rstrip("%")
        try:
            numbers = parse_puzzle(text)
        except LlmlabError as e:
            raise LlmlabError(f"{path}:{i}: {e}") from None
        out.append(Puzzle(rank, numbers, float(rate) / 100 if rate else None))
    return out


def test_puzzles(path: str | Path | None = None) -> list[Puzzle]:
    """The paper's test games: ranks 901-1000."""
    return [p for p in load_puzzles(path) if p.rank in TEST_RANKS]


@functools.lru_cache(maxsize=1)
def test_multisets() -> frozenset[tuple[int, ...]]:
    return frozenset(p.numbers for p in test_puzzles())


def is_test(numbers: Iterable[int | Fraction]) -> bool:
    """Whether a puzzle has the numbers of one of the 100 test games (in any order)."""
    values = [Fraction(x) for x in numbers]
    if any(v.denominator != 1 for v in values):
        return False
    return tuple(sorted(int(v) for v in values)) in test_multisets()


def generate_puzzles(n: int, seed: int = 0, *, solvable: bool | None = True, lo: int = MIN_NUMBER,
                     hi: int = MAX_NUMBER, exclude: Iterable[tuple[int, ...]] = ()) -> list[tuple[int, ...]]:
    """``n`` random puzzles (ascending tuples; repeats possible) from ``lo..hi``, never a test game's numbers nor
    any in ``exclude``. ``solvable``: True = only solvable ones, False = only unsolvable, None = either."""
    rng = random.Random(seed)
    banned = set(test_multisets()) | {tuple(sorted(x)) for x in exclude}
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 1000 * (n + 10):
            raise LlmlabError(f"cannot find {n} puzzles in {lo}..{hi} with solvable={solvable}")
        cand = tuple(sorted(rng.randint(lo, hi) for _ in range(NUMBERS_PER_PUZZLE)))
        if cand in banned:
            continue
        if solvable is not None and reachable(cand) != solvable:
            continue
        out.append(cand)
    return out
