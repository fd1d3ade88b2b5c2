"""Tasks the reasoning strategies can work on: what to ask at each step, how to read the reply, and how to
judge a final answer.

    from llmlab.reason.tasks import get_task
    task = get_task("game24")
    task.cot_prompt(task.parse_puzzle("4 9 10 13"))

A strategy (``strategies.py``) knows nothing of the Game of 24; it calls these methods. The task's checker is
called on final answers only (and by the runner, after the search, to score them). ``methods`` lists the
strategies a task supports: arithmetic word problems (``arith``) have no propose/value steps, so no Tree of
Thoughts; io, cot and cot-sc need only ``io_prompt``, ``cot_prompt``, ``extract_answer``, ``check`` and
``normalise``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from llmlab.errors import LlmlabError

# The paper's map from a value word to a number (summed over the value samples): one "sure" outweighs any
# number of "likely", and "impossible" is almost nothing but still orders ties.
VALUE_WEIGHTS = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}


class ReasoningTask(Protocol):
    name: str
    methods: tuple[str, ...]  # the strategies it supports (``strategies.METHODS`` or a part of it)

    def parse_puzzle(self, text: str): ...
    def puzzle_text(self, puzzle) -> str: ...
    def depth(self, puzzle) -> int: ...  # thoughts from the puzzle to a final state
    def io_prompt(self, puzzle) -> list[dict]: ...
    def cot_prompt(self, puzzle) -> list[dict]: ...
    def propose_prompt(self, state: str) -> list[dict]: ...
    def parse_proposals(self, text: str) -> list[tuple[str, str]]: ...  # (thought, state it leaves)
    def value_prompt(self, state: str) -> list[dict]: ...
    def parse_value(self, text: str) -> str | None: ...
    def is_goal(self, state: str) -> bool: ...
    def answer_prompt(self, puzzle, thoughts: Sequence[str]) -> list[dict]: ...
    def judge_prompt(self, puzzle, answer: str) -> list[dict]: ...
    def extract_answer(self, text: str) -> tuple[str, str]: ...  # (thought, answer) of a reply
    def check(self, puzzle, answer: str): ...  # -> an object with .ok and .reason
    def normalise(self, answer: str) -> str: ...
    def describe(self, puzzle, answer: str) -> str: ...  # what ``reason check`` prints for a valid answer


class Game24:
    """The Game of 24 (``llmlab.tasks.game24``): a puzzle is four numbers, a thought is one step
    ``a op b = c (left: ...)``, the state is what is left, the goal state is ``24``."""

    name = "game24"
    methods = ("io", "cot", "cot-sc", "tot")

    def parse_puzzle(self, text: str) -> tuple[int, ...]:
        from llmlab.tasks.game24 import parse_puzzle

        return parse_puzzle(text)

    def puzzle_text(self, puzzle) -> str:
        from llmlab.tasks.game24 import format_numbers

        return format_numbers(puzzle)

    def depth(self, puzzle) -> int:
        return len(puzzle) - 1

    def io_prompt(self, puzzle):
        from llmlab.tasks.game24_text import io_messages

        return io_messages(puzzle)

    def cot_prompt(self, puzzle):
        from llmlab.tasks.game24_text import cot_messages

        return cot_messages(puzzle)

    def propose_prompt(self, state: str):
        from llmlab.tasks.game24_text import propose_messages

        return propose_messages(state)

    def parse_proposals(self, text: str) -> list[tuple[str, str]]:
        from llmlab.tasks.game24 import format_numbers
        from llmlab.tasks.game24_text import parse_proposals

        return [(str(s), format_numbers(s.left)) for s in parse_proposals(text)]

    def value_prompt(self, state: str):
        from llmlab.tasks.game24_text import value_messages

        return value_messages(state)

    def parse_value(self, text: str) -> str | None:
        from llmlab.tasks.game24_text import parse_value

        return parse_value(text)

    def is_goal(self, state: str) -> bool:
        return state.strip() == "24"

    def answer_prompt(self, puzzle, thoughts):
        from llmlab.tasks.game24_text import answer_messages

        return answer_messages(puzzle, list(thoughts))

    def judge_prompt(self, puzzle, answer: str):
        from llmlab.tasks.game24_text import judge_messages

        return judge_messages(puzzle, answer)

    def extract_answer(self, text: str) -> tuple[str, str]:
        from llmlab.chat.template import split_think
        from llmlab.tasks.game24_text import parse_answer

        thought, rest = split_think(text)
        return thought, parse_answer(rest)

    def check(self, puzzle, answer: str):
        from llmlab.tasks.game24 import check_answer

        return check_answer(puzzle, answer)

    def normalise(self, answer: str) -> str:
        from llmlab.tasks.game24 import normalise_answer

        return normalise_answer(answer)

    def describe(self, puzzle, answer: str) -> str:
        return f"{answer.strip()} makes 24 with {self.puzzle_text(puzzle)}"


class ArithWord:
    """Multi-step arithmetic word problems (``llmlab.tasks.arith_word``): a puzzle is the problem's text, the
    chain of thought one operation a line, the answer one number."""

    name = "arith"
    methods = ("io", "cot", "cot-sc")

    def parse_puzzle(self, text: str):
        from llmlab.tasks.arith_word import parse_problem

        return parse_problem(text)

    def puzzle_text(self, puzzle) -> str:
        return puzzle.text

    def depth(self, puzzle) -> int:
        return len(puzzle.events)

    def io_prompt(self, puzzle):
        from llmlab.tasks.arith_word import io_messages

        return io_messages(puzzle)

    def cot_prompt(self, puzzle):
        from llmlab.tasks.arith_word import cot_messages

        return cot_messages(puzzle)

    def extract_answer(self, text: str) -> tuple[str, str]:
        """The thought, and the last non-empty line after it (the answer is the number alone)."""
        from llmlab.chat.template import split_think

        thought, rest = split_think(text)
        lines = [ln.strip() for ln in rest.splitlines() if ln.strip()]
        return thought, (lines[-1] if lines else "")

    def check(self, puzzle, answer: str):
        from llmlab.tasks.arith_word import check_answer

        return check_answer(puzzle, answer)

    def normalise(self, answer: str) -> str:
        from llmlab.tasks.arith_word import normalise_answer

        return normalise_answer(answer)

    def describe(self, puzzle, answer: str) -> str:
        return f"{answer.strip()} is the answer to {puzzle.text!r}"


TASKS = {"game24": Game24, "arith": ArithWord}


def get_task(name: str) -> ReasoningTask:
    if name not in TASKS:
        raise LlmlabError(f"unknown task {name!r}; choose {', '.join(TASKS)}")
    return TASKS[name]()
