"""Evaluation: bits per byte (bpb.py) and, from the other stages, task metrics and reports.

    llmlab eval bpb --model RUN --text FILE
"""
