"""Evaluation: bits per byte, chat and RL evaluations, the task suite, the speedrun report card.

    llmlab eval bpb --model RUN --text FILE
    llmlab eval suite --model RUN [--tasks ...] [--endpoint URL] --json     # eval/suite.py
    llmlab eval lm-eval --model RUN --tasks T --include-path DIR          # eval/lmeval.py

The suite: task files (``taskfile.py``), built-in generated tasks (``suites.py``), backends that answer
log-likelihood, generation and rolling requests (``backends.py`` for our runs, ``endpoint.py`` for
OpenAI-compatible servers, ``lmeval.py`` for lm-evaluation-harness), scoring with intervals (``stats.py``).
"""
