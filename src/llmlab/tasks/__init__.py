"""Checkable tasks: generators of questions with known answers, answer normalisation and checking, and the
rewards built on them (used by SFT data, GRPO, evaluation and the report card)."""
