"""Checking answers: the one exact-match comparison that SFT evaluation, GRPO's rewards, PPO's answer check,
ranked pairs and the report all use.

    from llmlab.tasks.check import exact_match, checkable
    exact_match("  19. ", "19")        # True: case-folded, whitespace collapsed, outer quotes and one final period dropped
    checkable(prompt)                  # whether exact match can judge answers to this RL prompt

Exact match is deliberately strict: after normalisation the whole response must equal the answer. A rambling
answer that contains the right words does not count -- exactly what the tuned assistant should learn not to do.
"""

from __future__ import annotations

# The generated kinds whose answers exact match can judge (tasks/synth.py); identity, refusals, greetings and
# continuing a line have many right answers, so exact match would mislead there.
CHECKABLE_KINDS = ("arithmetic", "next_number", "parity", "compare", "spell", "reverse", "count_letters", "count_words",
                   "first_letter", "last_letter", "who_said", "which_play")


def normalize_answer(text: str) -> str:
    """What exact match compares: case-folded, whitespace collapsed, outer quotes and final period dropped."""
    t = " ".join(text.strip().split()).casefold()
    t = t.strip("'\"")
    return t[:-1].rstrip() if t.endswith(".") else t


def exact_match(prediction: str, answer: str) -> bool:
    """Whether a response is exactly the reference answer after ``normalize_answer``."""
    return normalize_answer(prediction) == normalize_answer(answer)


def checkable(prompt) -> bool:
    """Whether exact match can judge answers to this prompt (an RL prompt with ``answer`` and ``meta``): it has a
    reference answer and no free-text kind. Used by ``ranked-pairs --check-answers`` and ``ppo --check-coef``."""
    kind = prompt.meta.get("kind")
    return prompt.answer is not None and (kind is None or kind in CHECKABLE_KINDS)
