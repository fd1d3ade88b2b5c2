"""Arithmetic the assistant answers with its calculator: sums, differences and products of 2-3 digit numbers,
as conversations that call the tool (SFT), as verifiable tasks (GRPO, evaluation).

    from llmlab.tasks.calc_tasks import calc_conversations, calc_tasks
    train = calc_conversations(4000, "train", seed=0)       # Conversation objects, kind "calc"
    held_out = calc_tasks(300, "val", seed=0)              # [{"prompt", "answer", "kind": "calc", "op"}]

An answer goes through the tool in llmlab's native format (``chat/template.py``)::

    <|user|>What is 347 times 28?<|end|><|assistant|><|tool_call|>calc 347 * 28<|/tool_call|>
    <|tool_result|>9716<|/tool_result|>9716<|end|>

The call is written by the model (trained), the result block by the tool (not trained: the template's mask
leaves tool results out), and the answer after it is the result copied. Results here are Python's exact
integer arithmetic, which is what ``llmlab tool calc`` prints for them.

Which questions: both numbers 10..999, not both below 100 when a sum needs no carry or a difference no
borrow -- those stay the direct-answer kind of ``tasks/synth.py`` (``arithmetic``), which the model learns to
answer without a tool. Differences are never negative. The train/held-out split is by item (the two numbers
and the operation), as in ``synth.py``.
"""

from __future__ import annotations

import random

from llmlab.chat.data import Conversation
from llmlab.tasks.synth import PREFIXES, SYSTEM_PROMPTS, split_of

OPS = {
    "+": (lambda a, b: a + b, ["What is {a} plus {b}?", "What is {a} + {b}?", "Compute {a} + {b}.", "{a} + {b} = ?",
                               "Add {a} and {b}.", "What is the sum of {a} and {b}?"]),
    "-": (lambda a, b: a - b, ["What is {a} minus {b}?", "What is {a} - {b}?", "Compute {a} - {b}.", "{a} - {b} = ?",
                               "Subtract {b} from {a}.", "What is the difference between {a} and {b}?"]),
    "*": (lambda a, b: a * b, ["What is {a} times {b}?", "What is {a} * {b}?", "Compute {a} * {b}.", "{a} * {b} = ?",
                               "Multiply {a} by {b}.", "What is the product of {a} and {b}?",
                               "What is {a} multiplied by {b}?"]),
}


def direct_kind(a: int, b: int, op: str) -> bool:
    """Whether ``a op b`` is one of ``synth.py``'s direct-answer items (two-digit, no carry or borrow)."""
    if a >= 100 or b >= 100 or op == "*":
        return False
    if op == "+":
        return a % 10 + b % 10 <= 9 and a // 10 + b // 10 <= 9
    return a % 10 >= b % 10


def calc_item(rng: random.Random, split: str, ops: str = "+-*") -> tuple[str, int, int, str]:
    """``(op, a, b, question)`` of one split."""
    while True:
        op = rng.choice(ops)
        digits = (rng.choice((2, 3)), rng.choice((2, 3)))
        a, b = (rng.randint(10 ** (d - 1), 10 ** d - 1) for d in digits)
        if op == "-" and a < b:
            a, b = b, a
        if direct_kind(a, b, op) or split_of(f"calc:{a}{op}{b}") != split:
            continue
        return op, a, b, rng.choice(OPS[op][1]).format(a=a, b=b)


def calc_call(a: int, b: int, op: str) -> str:
    """The call body the model writes."""
    return f"calc {a} {op} {b}"


def calc_conversations(n: int, split: str = "train", seed: int = 0) -> list[Conversation]:
    """``n`` conversations of one split answered through the calculator (see the module doc)."""
    rng = random.Random(f"llmlab-calc:{seed}:{split}")
    out = []
    for _ in range(n):
        op, a, b, q = calc_item(rng, split)
        result = str(OPS[op][0](a, b))
        msgs = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.2 else []
        msgs += [{"role": "user", "content": rng.choice(PREFIXES) + q},
                 {"role": "assistant", "content": [{"type": "tool_call", "text": calc_call(a, b, op)},
                                                   {"type": "tool_result", "text": result},
                                                   {"type": "text", "text": result}]}]
        out.append(Conversation(msgs, {"kind": "calc", "op": op, "answer": result}))
    return out


def calc_tasks(n: int, split: str = "val", seed: int = 0, ops: str = "+-*") -> list[dict]:
    """``n`` verifiable tasks ``{"prompt", "answer", "kind": "calc", "op"}`` of one split (GRPO, evaluation)."""
    rng = random.Random(f"llmlab-calc-tasks:{seed}:{split}")
    out = []
    for _ in range(n):
        op, a, b, q = calc_item(rng, split, ops)
        out.append({"prompt": q, "answer": str(OPS[op][0](a, b)), "kind": "calc", "op": op})
    return out
