"""Reward functions for GRPO (and the exact-match evaluation): plain Python callables on text.

    from llmlab.tasks.rewards import exact_match_reward, REWARD_FUNCTIONS
    exact_match_reward(prompt, "19.")      # 1.0 if the answer matches prompt.answer, else 0.0

A reward function takes ``(prompt: RLPrompt, response: str)`` and returns a float. Anything with that
signature works (``grpo.run(cfg, tcfg, reward_fns=[my_fn])``); the CLI picks them by name from
``REWARD_FUNCTIONS``. Rewards of several functions are summed.

Exact match is ``llmlab.tasks.check.exact_match``, the comparison every evaluation uses.
"""

from __future__ import annotations

from llmlab.tasks.check import exact_match, normalize_answer


def exact_match_reward(prompt, response: str) -> float:
    """1.0 when the response is exactly the prompt's answer, else 0.0 (prompts without an answer: 0.0)."""
    if prompt.answer is None:
        return 0.0
    return 1.0 if exact_match(response, prompt.answer) else 0.0


def partial_match_reward(prompt, response: str) -> float:
    """Partial credit in [0, 0.5]: half the similarity (difflib ratio) of the normalised response to the
    answer. A shaping term for a model that is rarely exactly right: without it every sample of a group
    scores 0 and GRPO has no signal. Use with ``exact`` (an exact answer then scores 1.5)."""
    import difflib

    if prompt.answer is None:
        return 0.0
    return 0.5 * difflib.SequenceMatcher(None, normalize_answer(response), normalize_answer(prompt.answer)).ratio()


def digit_match_reward(prompt, response: str) -> float:
    """Partial credit in [0, 0.5] for number answers: half the fraction of digits right in their place, when the
    response is a whole number with as many digits as the answer (else 0). A shaping term for arithmetic: the
    sums have no carries, so each digit of "88 - 31" is its own small skill, and an answer with the tens right
    but the units wrong ("56" for 57) is closer than one with neither -- where difflib's ratio (``partial``)
    scores "75" and "56" alike. Prompts whose answer is not a whole number get 0. Use with ``exact``."""
    if prompt.answer is None:
        return 0.0
    want, got = normalize_answer(prompt.answer), normalize_answer(response)
    if not (want.isascii() and want.isdigit() and got.isascii() and got.isdigit()) or len(got) != len(want):
        return 0.0
    return 0.5 * sum(a == b for a, b in zip(got, want)) / len(want)


def brevity_reward(prompt, response: str) -> float:
    """A small shaping term: -0.1 per 100 characters (prefers answers that stop)."""
    return -0.001 * len(response)


REWARD_FUNCTIONS = {"exact": exact_match_reward, "partial": partial_match_reward, "digits": digit_match_reward,
                    "brevity": brevity_reward}
