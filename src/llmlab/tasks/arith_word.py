"""Multi-step arithmetic word problems: a checkable task with worked chain-of-thought solutions, for measuring
self-consistency against greedy chain of thought (issue 30's second target).

    from llmlab.tasks import arith_word as aw
    p = aw.problems(1, split="test", seed=0)[0]
    p.text     # "Ann has 23 apples. She buys 3 bags of 12. She gives away 17. How many apples does she have now?"
    p.answer   # 42
    aw.solution_lines(p, order="story")   # ["3 * 12 = 36", "23 + 36 = 59", "59 - 17 = 42"]
    aw.parse_problem(p.text) == p         # the text alone is the problem: puzzle files hold one a line
    aw.check_answer(p, "42").ok           # exact: the answer's number must be the problem's

A problem is a starting count and two or three events (``problems(..., events=(3, 4))`` draws longer ones),
each adding or taking away a number or a number of groups (``3 bags of 12``, ``5 to each of her 4 friends``),
then the question. Its answer is the count at the end; every count on the way is >= 0, so the story makes sense.

The chain of thought is one operation a line (``a op b = c``), then the answer alone after the thought
(``<|think|>3 * 12 = 36 / 23 + 36 = 59 / 59 - 17 = 42<|/think|>42``). Training solutions come in several
orders (``ORDERS``): "story" applies the events as told; "gains" applies what came in first, then each loss;
"totals" adds up what came in and what went out, then takes one from the other; "shuffled" applies the events in
a random order that keeps every count in range (its lines hold other facts); and a ``+`` or ``*`` line may
write its operands either way round. All are right, and their intermediate numbers and lines differ, so a
model that learned them samples different paths to the same answer: the diversity self-consistency votes over
(Wang et al. 2022).

Split (by item, as ``tasks/synth.py``): a problem's key is its ordered tuple of numbers (start, then each event's
numbers); a stable hash puts each key in "test" (``TEST_FRACTION``), "val" (``VAL_FRACTION`` of the rest; for
choosing settings such as the sampling temperature) or "train". Names, items and verbs are only phrasing, so a
held-out problem is never seen in training under other words; the arithmetic facts inside it (``23 + 36``) are,
as in synth's held-out sums.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Sequence

from llmlab.errors import LlmlabError
from llmlab.tasks.game24 import Check
from llmlab.tasks.synth import split_of

TEST_FRACTION = 0.10
VAL_FRACTION = 0.05
SPLITS = ("train", "val", "test")
ORDERS = ("story", "gains", "totals", "shuffled")
EVENT_COUNTS = (2, 3)  # events per problem, drawn uniformly (``problems(..., events=)`` takes others)
MAX_COUNT = 199  # no count on the way (nor the answer) goes above this

NAMES = (("Ann", "She", "her"), ("Ben", "He", "his"), ("Cara", "She", "her"), ("Dev", "He", "his"),
         ("Eve", "She", "her"), ("Finn", "He", "his"), ("Gus", "He", "his"), ("Hana", "She", "her"),
         ("Ivo", "He", "his"), ("Jo", "She", "her"), ("Kai", "He", "his"), ("Lena", "She", "her"))
ITEMS = ("apples", "pens", "stamps", "marbles", "cards", "shells", "coins", "stickers", "books", "eggs")

# Event kinds: a sign and the sentences that tell it ({p}: pronoun, {q}: possessive, {n}: number; groups: {b}
# groups of {c}). The parser reads them back with the same templates, so every template must stay unambiguous.
EVENTS = {
    "add": (+1, ("{p} buys {n} more.", "{p} finds {n} more.", "A friend gives {o} {n} more.")),
    "sub": (-1, ("{p} gives away {n}.", "{p} loses {n}.", "{p} sells {n}.")),
    "add_groups": (+1, ("{p} buys {b} bags of {c}.", "{p} gets {b} boxes with {c} in each.")),
    "sub_groups": (-1, ("{p} gives {c} to each of {q} {b} friends.", "{p} sells {b} packs of {c}.")),
}
_OBJECT = {"She": "her", "He": "him"}


@dataclass(frozen=True)
class Event:
    kind: str  # a key of EVENTS
    numbers: tuple[int, ...]  # (n,) or (b, c)
    template: int = 0  # which sentence of EVENTS[kind] tells it (phrasing only)

    @property
    def amount(self) -> int:
        """What the event adds (> 0) or takes away (< 0)."""
        sign = EVENTS[self.kind][0]
        return sign * (self.numbers[0] if len(self.numbers) == 1 else self.numbers[0] * self.numbers[1])


@dataclass(frozen=True)
class Problem:
    name: str
    item: str
    start: int
    events: tuple[Event, ...]

    @property
    def numbers(self) -> tuple[int, ...]:
        """The split key: start, then every event's numbers, in order."""
        return (self.start, *(x for e in self.events for x in e.numbers))

    @property
    def answer(self) -> int:
        return self.start + sum(e.amount for e in self.events)

    @property
    def text(self) -> str:
        _, p, q = _person(self.name)
        lines = [f"{self.name} has {self.start} {self.item}."]
        for e in self.events:
            tmpl = EVENTS[e.kind][1][e.template]
            n = e.numbers
            lines.append(tmpl.format(p=p, q=q, o=_OBJECT[p], n=n[0], b=n[0], c=n[-1]))
        lines.append(f"How many {self.item} does {self.name} have now?")
        return " ".join(lines)

    @property
    def split(self) -> str:
        return split_of_numbers(self.numbers)


def _person(name: str) -> tuple[str, str, str]:
    for person in NAMES:
        if person[0] == name:
            return person
    raise LlmlabError(f"unknown name {name!r} in an arithmetic word problem")


def split_of_numbers(numbers: Sequence[int]) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a problem's number tuple (a stable hash; see the module docstring)."""
    key = "arith_word:" + ",".join(str(x) for x in numbers)
    if split_of(key, TEST_FRACTION) == "val":
        return "test"
    return "val" if split_of("val:" + key, VAL_FRACTION) == "val" else "train"


# ----------------------------------------------------------------------------------------------------------
# Generating problems


def random_problem(rng: random.Random, counts: Sequence[int] = EVENT_COUNTS) -> Problem | None:
    """One random problem with ``rng.choice(counts)`` events, or None when its counts leave 0..MAX_COUNT (the
    caller draws again)."""
    name = rng.choice(NAMES)[0]
    item = rng.choice(ITEMS)
    start = rng.randint(10, 99)
    events, count = [], start
    for _ in range(rng.choice(tuple(counts))):
        kind = rng.choice(tuple(EVENTS))
        nums = (rng.randint(2, 49),) if kind in ("add", "sub") else (rng.randint(2, 6), rng.randint(2, 12))
        e = Event(kind, nums, rng.randrange(len(EVENTS[kind][1])))
        count += e.amount
        if not 0 <= count <= MAX_COUNT:
            return None
        events.append(e)
    if all(e.amount > 0 for e in events) or all(e.amount < 0 for e in events):
        return None  # both directions: the "totals" order then differs from the story
    return Problem(name, item, start, tuple(events))


def problems(n: int, split: str = "train", seed: int = 0, *, distinct: bool = True,
             events: Sequence[int] = EVENT_COUNTS) -> list[Problem]:
    """``n`` problems of one split (deterministic for a seed); ``distinct``: no number tuple twice; ``events``:
    the event counts a problem may have (each equally likely; the default's problems are the same as before
    the knob, and a problem's split depends only on its numbers, so it is the same under any ``events``)."""
    if split not in SPLITS:
        raise LlmlabError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
    _check_events(events)
    rng = random.Random(f"arith_word:{split}:{seed}")
    out, seen = [], set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise LlmlabError(f"could not draw {n} distinct {split} problems")
        p = random_problem(rng, events)
        if p is None or p.split != split or (distinct and p.numbers in seen):
            continue
        seen.add(p.numbers)
        out.append(p)
    return out


def _check_events(events: Sequence[int]) -> None:
    if not events or any(not 2 <= k <= 5 for k in events):
        raise LlmlabError(f"events per problem must be 2..5 (a gain and a loss at least), got {tuple(events)}")


# ----------------------------------------------------------------------------------------------------------
# Worked solutions (the chain of thought)


def _step(a: int, op: str, b: int, swap: bool = False) -> tuple[str, int]:
    """``a op b = c`` and c; ``swap`` writes a commutative operation's operands the other way round."""
    c = a + b if op == "+" else a - b if op == "-" else a * b
    if swap and op != "-":
        a, b = b, a
    return f"{a} {op} {b} = {c}", c


def solution_lines(p: Problem, order: str = "story", rng: random.Random | None = None,
                   swap_share: float = 0.0) -> list[str]:
    """The worked solution, one operation a line; the last line's result is the answer. A group event is
    multiplied out on its own line just before it is used. ``order`` (``ORDERS``): "story" applies the events
    as told; "gains" applies what came in first, then takes away each loss; "totals" adds what came in, adds
    up the losses, and takes that sum away once; "shuffled" applies the events in a random order among those
    that keep every count in 0..MAX_COUNT (drawn with ``rng``, else fixed by the problem's numbers), so its
    lines' facts differ from the story's (``23 - 17 = 6``, ``6 + 36 = 42``). With ``rng``, each ``+`` or ``*``
    line has its operands the other way round with probability ``swap_share`` (``36 + 23`` for ``23 + 36``).
    Every count on the way stays >= 0 in each order."""
    if order not in ORDERS:
        raise LlmlabError(f"unknown solution order {order!r}; choose {', '.join(ORDERS)}")
    lines: list[str] = []

    def step(a: int, op: str, b: int) -> int:
        line, c = _step(a, op, b, swap=rng is not None and rng.random() < swap_share)
        lines.append(line)
        return c

    def size(e: Event) -> int:
        return e.numbers[0] if len(e.numbers) == 1 else step(e.numbers[0], "*", e.numbers[1])

    gains = [e for e in p.events if e.amount > 0]
    losses = [e for e in p.events if e.amount < 0]
    count = p.start
    if order in ("story", "shuffled"):
        for e in p.events if order == "story" else _valid_order(p, rng or random.Random(repr(p.numbers))):
            count = step(count, "+" if e.amount > 0 else "-", size(e))
        return lines
    for e in gains:
        count = step(count, "+", size(e))
    if order == "gains":
        for e in losses:
            count = step(count, "-", size(e))
        return lines
    out = None
    for e in losses:
        n = size(e)
        out = n if out is None else step(out, "+", n)
    if out is not None:
        step(count, "-", out)
    return lines


def _valid_order(p: Problem, rng: random.Random) -> tuple[Event, ...]:
    """A random order of the events in which every count stays in 0..MAX_COUNT (the story's order always does)."""
    def ok(order) -> bool:
        count = p.start
        for e in order:
            count += e.amount
            if not 0 <= count <= MAX_COUNT:
                return False
        return True

    return rng.choice([o for o in itertools.permutations(p.events) if ok(o)])


def parse_steps(text: str) -> list[tuple[int, str, int, int]]:
    """The ``a op b = c`` lines of a chain of thought, as written (nothing recomputed); other lines ignored."""
    out = []
    for line in text.splitlines():
        m = _STEP.fullmatch(line.strip())
        if m:
            out.append((int(m[1]), m[2], int(m[3]), int(m[4])))
    return out


_STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (-?\d+)")


# ----------------------------------------------------------------------------------------------------------
# Reading problems and answers


def _template_regex(tmpl: str) -> re.Pattern:
    """A sentence template as a regex: numbers captured by name, the pronoun words matched loosely."""
    pattern = re.escape(tmpl)
    for field, rx in (("p", r"(?:She|He)"), ("q", r"(?:her|his)"), ("o", r"(?:her|him)"), ("n", r"(?P<n>\d+)"),
                      ("b", r"(?P<b>\d+)"), ("c", r"(?P<c>\d+)")):
        pattern = pattern.replace(re.escape("{" + field + "}"), rx)
    return re.compile(pattern)


_EVENT_RES = [(kind, i, _template_regex(t)) for kind, (_, ts) in EVENTS.items() for i, t in enumerate(ts)]
_HEAD = re.compile(r"([A-Z][a-z]+) has (\d+) ([a-z]+)\.")
_QUESTION = re.compile(r"How many ([a-z]+) does ([A-Z][a-z]+) have now\?")


def parse_problem(text: str) -> Problem:
    """A problem from its text (``Problem.text``'s sentences); anything else is a one-line ``LlmlabError``."""
    sentences = re.findall(r"[^.?]+[.?]", " ".join(text.split()))
    sentences = [s.strip() for s in sentences]
    if len(sentences) < 3 or "".join(sentences).replace(" ", "") != "".join(text.split()):
        raise LlmlabError(f"not an arithmetic word problem: {text.strip()[:60]!r}")
    head, *middle, question = sentences
    m, q = _HEAD.fullmatch(head), _QUESTION.fullmatch(question)
    if not m or not q or q[1] != m[3] or q[2] != m[1] or m[1] not in {n for n, _, _ in NAMES}:
        raise LlmlabError(f"not an arithmetic word problem (first sentence or question): {text.strip()[:60]!r}")
    events = []
    for s in middle:
        for kind, i, rx in _EVENT_RES:
            e = rx.fullmatch(s)
            if e:
                g = e.groupdict()
                nums = (int(g["n"]),) if g.get("n") else (int(g["b"]), int(g["c"]))
                events.append(Event(kind, nums, i))
                break
        else:
            raise LlmlabError(f"not an arithmetic word problem (unknown sentence {s!r})")
    if not events:
        raise LlmlabError("an arithmetic word problem needs at least one event")
    return Problem(m[1], m[3], int(m[2]), tuple(events))


def normalise_answer(answer: str) -> str:
    """The answer as a canonical integer string when it is one number (``" 42."``, ``"Answer: 42"``, ``"42
    apples"`` -> ``"42"``); otherwise the text stripped and lower-cased (so it can still be voted on, and is wrong)."""
    t = " ".join(answer.strip().split()).lower()
    t = re.sub(r"^(?:answer\s*:|the answer is)\s*", "", t).rstrip(".").strip()
    m = re.fullmatch(r"(-?\d[\d,]*)(?: [a-z]+)?", t)
    if m and re.fullmatch(r"-?\d{1,3}(?:,\d{3})*|-?\d+", m[1]):
        return str(int(m[1].replace(",", "")))
    return t


def check_answer(problem: Problem | str, answer: str) -> Check:
    """Exact: the answer must be one number (``normalise_answer``) equal to the problem's answer."""
    p = parse_problem(problem) if isinstance(problem, str) else problem
    got = normalise_answer(answer)
    if not re.fullmatch(r"-?\d+", got):
        return Check(False, f"not a number: {answer.strip()[:40]!r}")
    if int(got) != p.answer:
        return Check(False, f"{got} is wrong", int(got))
    return Check(True, "", int(got))


# ----------------------------------------------------------------------------------------------------------
# Prompts and training conversations


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def io_messages(p: Problem | str) -> list[dict]:
    return _user(f"{_text(p)} Give only the answer.")


def cot_messages(p: Problem | str) -> list[dict]:
    return _user(f"{_text(p)} Think step by step.")


def _text(p: Problem | str) -> str:
    return p if isinstance(p, str) else p.text


@dataclass
class ArithDataConfig:
    """How many conversations ``training_conversations`` makes: worked CoT solutions and direct answers of
    training-split problems."""

    seed: int = 0
    n_cot: int = 60000
    n_io: int = 6000
    # Shares of the CoT solutions' orders (``ORDERS``: story, gains, totals, shuffled) and of ``+``/``*`` lines
    # written with swapped operands. Model A of docs/LOG.md (2026-12-06, issue 30) had (0.5, 0.0, 0.5, 0) and no
    # swaps.
    order_shares: tuple[float, ...] = (0.4, 0.3, 0.3, 0.0)
    swap_share: float = 0.3
    events: tuple[int, ...] = EVENT_COUNTS  # events per problem (training and held-out problems alike)
    n_val: int = 200  # validation problems (settings, e.g. the SC temperature)
    n_test: int = 500  # held-out test problems written beside the data

    def validate(self) -> None:
        if min(self.n_cot, self.n_io, self.n_val, self.n_test, *self.order_shares) < 0 \
                or not 0 <= self.swap_share <= 1 or self.n_cot + self.n_io < 1 \
                or len(self.order_shares) != len(ORDERS) or sum(self.order_shares) <= 0:
            raise LlmlabError("invalid arithmetic data config: counts >= 0 (some conversations), one share >= 0 "
                              f"per order ({', '.join(ORDERS)}; not all 0), swap_share in [0, 1]")
        _check_events(self.events)


def training_conversations(cfg: ArithDataConfig | None = None) -> list:
    """CoT and IO conversations (``meta["kind"]``, ``meta["puzzle"]``) of training-split problems, shuffled.
    Every problem is checked to be on the train side; a CoT solution is checked to end at the answer."""
    from llmlab.chat.data import Conversation

    cfg = cfg or ArithDataConfig()
    cfg.validate()
    rng = random.Random(cfg.seed)
    pool = problems(cfg.n_cot + cfg.n_io, "train", cfg.seed, distinct=False, events=cfg.events)
    out = []
    for i, p in enumerate(pool):
        if p.split != "train":
            raise LlmlabError(f"held-out problem in the training data: {p.text}")
        if i < cfg.n_cot:
            order = rng.choices(ORDERS, cfg.order_shares)[0]
            lines = solution_lines(p, order, rng, cfg.swap_share)
            assert parse_steps(lines[-1])[0][3] == p.answer, p
            reply = [{"type": "think", "text": "\n".join(lines)}, {"type": "text", "text": str(p.answer)}]
            out.append(Conversation(cot_messages(p) + [{"role": "assistant", "content": reply}],
                                    {"kind": "cot", "puzzle": p.text, "order": order}))
        else:
            out.append(Conversation(io_messages(p) + [{"role": "assistant", "content": str(p.answer)}],
                                    {"kind": "io", "puzzle": p.text}))
    rng.shuffle(out)
    return out
