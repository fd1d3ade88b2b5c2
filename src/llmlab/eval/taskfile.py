"""Evaluation task files: one JSONL format for the built-in suites and for tasks users add, and its validator.

    from llmlab.eval.taskfile import load_task, validate_task_file, write_task
    task = load_task("my_tasks/capitals.jsonl")       # LlmlabError "file:line: field 'x': ..." when malformed
    problems = validate_task_file("capitals.jsonl")   # every problem, each as "file:line: field 'x': ..."
    write_task("out/capitals.jsonl", task)            # atomic

    llmlab eval validate my_tasks/*.jsonl             # prints each problem; exit 2 if any
    llmlab eval suite --model RUN --tasks my_tasks/capitals.jsonl,arithmetic

The format (``llmlab-eval-task`` version 1). Line 1 is a header object; every further non-blank line is one item::

    {"format": "llmlab-eval-task", "version": 1, "name": "capitals", "kind": "choice", "style": "text"}
    {"context": "The capital of France is", "choices": [" Paris", " Rome", " Madrid"], "answer": 0}
    {"context": "The capital of Italy is", "choices": [" Paris", " Rome", " Madrid"], "answer": 1}

Header fields:

* ``format`` = ``"llmlab-eval-task"``, ``version`` = 1 (required); ``name`` (required: letters, digits, ``_ - .``).
* ``kind`` (required):
  - ``"choice"``: multiple choice by log-likelihood. Each choice is scored as the continuation of the item's
    prompt; the prediction is the choice with the highest summed log-probability (``acc``) or the highest
    log-probability per character of the scored continuation (``acc_norm``), as lm-evaluation-harness
    defines them.
    Chance is 1 / (number of choices), averaged over items.
  - ``"generate"``: greedy generation scored by exact match (``llmlab.tasks.check.exact_match``: case,
    spaces, outer quotes and a final period do not matter). Chance is the items' ``chance`` (default 0).
  - ``"bpb"``: bits per byte of each item's ``text`` (``eval/bpb.py``'s definition); lower is better and it
    has no chance level, so it is reported but not in the aggregate.
* ``style`` (default ``"text"``): how an item is posed.
  - ``"text"``: the item's ``context`` is raw text the model continues (a choice is appended verbatim, so
    put the separating space in the choice: ``" Paris"``; ``""`` is a valid context: only the sentence is
    scored, as in BLiMP).
  - ``"qa"``: the item's ``question`` is asked. A chat model gets it as a user message through its chat
    template (a choice is then the assistant's whole reply); a base model gets it as text, after the header's
    ``few_shot`` examples: ``"Question: ...\\nAnswer: ...\\n\\n" ... "Question: <question>\\nAnswer:"``,
    with a choice appended after one space. ``llmlab eval suite --prompt-style`` decides which.
* ``metric`` (choice only): ``"acc"`` (default) or ``"acc_norm"``: the task's headline score (both are
  reported).
* ``few_shot`` (qa only): a list of ``{"question": str, "answer": str}`` solved examples for the text form.
* ``max_new_tokens`` (generate; default 32) and ``stop`` (generate, text form; default ``["\\n"]``): the
  answer is the generated text up to the first stop string.
* ``description``, ``source``, ``seed`` and ``suite_version``: free notes (generated suites record their seed
  and version here).

Item fields: ``context`` (text style) or ``question`` (qa style), both strings; ``choices`` (choice: a list of
at least 2 distinct non-empty strings) and ``answer`` (choice: the index of the right choice; generate: the
right answer, or a list of acceptable answers); ``text`` (bpb: a non-empty string); optional ``id`` (a
string), ``group`` (a string: scores are also reported per group) and, for generate items, ``chance`` (the
probability of a right answer by guessing, e.g. 0.5 for "which is larger, 12 or 40?"; default 0). Unknown
fields are errors (a misspelt ``anwser`` would otherwise be silently ignored).

Every problem is reported as ``file:line: field 'name': what is wrong``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.errors import LlmlabError

TASK_FORMAT = "llmlab-eval-task"
TASK_VERSION = 1
KINDS = ("choice", "generate", "bpb")
STYLES = ("text", "qa")
METRICS = ("acc", "acc_norm")
HEADER_FIELDS = {"format", "version", "name", "kind", "style", "metric", "few_shot", "max_new_tokens", "stop",
                 "description", "source", "seed", "suite_version"}
ITEM_FIELDS = {"choice": {"context", "question", "choices", "answer", "id", "group"},
               "generate": {"context", "question", "answer", "id", "group", "chance"},
               "bpb": {"text", "id", "group"}}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_PROBLEMS = 50  # a validator run stops collecting after this many


@dataclass
class Task:
    """One evaluation task: a header's settings and its items (plain dicts, as in the file)."""

    name: str
    kind: str
    items: list[dict]
    style: str = "text"
    metric: str = "acc"
    few_shot: list[dict] = field(default_factory=list)
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    description: str = ""
    source: str = ""
    seed: int | None = None
    suite_version: int | None = None
    path: str = ""  # the file it was loaded from (not part of the task)

    def header(self) -> dict:
        h = {"format": TASK_FORMAT, "version": TASK_VERSION, "name": self.name, "kind": self.kind,
             "style": self.style}
        if self.kind == "choice":
            h["metric"] = self.metric
        if self.style == "qa" and self.few_shot:
            h["few_shot"] = self.few_shot
        if self.kind == "generate":
            h.update(max_new_tokens=self.max_new_tokens, stop=list(self.stop))
        for k in ("description", "source"):
            if getattr(self, k):
                h[k] = getattr(self, k)
        for k in ("seed", "suite_version"):
            if getattr(self, k) is not None:
                h[k] = getattr(self, k)
        return h

    def sha256(self) -> str:
        """A hash of everything that decides the scores (header and items, not the free notes)."""
        head = {k: v for k, v in self.header().items() if k not in ("description", "source")}
        h = hashlib.sha256(json.dumps(head, sort_keys=True).encode())
        for it in self.items:
            h.update(item_key(it).encode())
        return h.hexdigest()

    def chance(self) -> float | None:
        """The expected score of guessing: mean 1/k for choice, 0 for exact match, None for bpb."""
        if self.kind == "choice":
            return sum(1.0 / len(it["choices"]) for it in self.items) / max(1, len(self.items))
        if self.kind == "generate":
            return sum(it.get("chance", 0.0) for it in self.items) / max(1, len(self.items))
        return None


def item_key(item: dict) -> str:
    """A short stable hash of one item (which items are already scored, when a run resumes)."""
    return hashlib.sha256(json.dumps(item, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------------------------------------
# Validation


def _loc(path, line: int, name: str | None = None) -> str:
    return f"{path}:{line}: field {name!r}" if name else f"{path}:{line}"


def _check_header(h, path, problems: list[str]) -> None:
    if not isinstance(h, dict):
        problems.append(f"{path}:1: the first line must be the header object "
                        f'{{"format": "{TASK_FORMAT}", "version": {TASK_VERSION}, "name": ..., "kind": ...}}')
        return
    if h.get("format") != TASK_FORMAT:
        problems.append(f"{_loc(path, 1, 'format')}: must be {TASK_FORMAT!r} (the first line is the header), "
                        f"got {h.get('format')!r}")
    if h.get("version") != TASK_VERSION:
        problems.append(f"{_loc(path, 1, 'version')}: must be {TASK_VERSION}, got {h.get('version')!r}")
    for k in sorted(set(h) - HEADER_FIELDS):
        problems.append(f"{_loc(path, 1, k)}: unknown header field (known: {', '.join(sorted(HEADER_FIELDS))})")
    name = h.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(f"{_loc(path, 1, 'name')}: must be a name of letters, digits, '_', '-' or '.', got {name!r}")
    if h.get("kind") not in KINDS:
        problems.append(f"{_loc(path, 1, 'kind')}: must be one of {', '.join(KINDS)}, got {h.get('kind')!r}")
    if h.get("style", "text") not in STYLES:
        problems.append(f"{_loc(path, 1, 'style')}: must be one of {', '.join(STYLES)}, got {h.get('style')!r}")
    if "metric" in h and h["metric"] not in METRICS:
        problems.append(f"{_loc(path, 1, 'metric')}: must be one of {', '.join(METRICS)}, got {h['metric']!r}")
    fs = h.get("few_shot", [])
    if not isinstance(fs, list) or not all(isinstance(x, dict) and isinstance(x.get("question"), str)
                                           and isinstance(x.get("answer"), str) and set(x) <= {"question", "answer"}
                                           for x in fs):
        problems.append(f"{_loc(path, 1, 'few_shot')}: must be a list of {{\"question\": str, \"answer\": str}}")
    mnt = h.get("max_new_tokens", 32)
    if not isinstance(mnt, int) or isinstance(mnt, bool) or mnt < 1:
        problems.append(f"{_loc(path, 1, 'max_new_tokens')}: must be a positive integer, got {mnt!r}")
    stop = h.get("stop", ["\n"])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        problems.append(f"{_loc(path, 1, 'stop')}: must be a list of non-empty strings")
    for k in ("description", "source"):
        if k in h and not isinstance(h[k], str):
            problems.append(f"{_loc(path, 1, k)}: must be a string")


def _check_item(it, kind: str, style: str, path, line: int, problems: list[str]) -> None:
    if not isinstance(it, dict):
        problems.append(f"{_loc(path, line)}: an item must be a JSON object, got {type(it).__name__}")
        return
    for k in sorted(set(it) - ITEM_FIELDS[kind]):
        problems.append(f"{_loc(path, line, k)}: unknown field for a {kind} item "
                        f"(known: {', '.join(sorted(ITEM_FIELDS[kind]))})")
    for k in ("id", "group"):
        if k in it and not isinstance(it[k], str):
            problems.append(f"{_loc(path, line, k)}: must be a string, got {type(it[k]).__name__}")
    if kind == "bpb":
        if not isinstance(it.get("text"), str) or not it.get("text"):
            problems.append(f"{_loc(path, line, 'text')}: required, a non-empty string")
        return
    prompt = "context" if style == "text" else "question"
    other = "question" if style == "text" else "context"
    if prompt not in it:
        problems.append(f"{_loc(path, line, prompt)}: required for a {style}-style task")
    elif not isinstance(it[prompt], str):
        problems.append(f"{_loc(path, line, prompt)}: must be a string, got {type(it[prompt]).__name__}")
    elif style == "qa" and not it[prompt].strip():
        problems.append(f"{_loc(path, line, prompt)}: must not be empty")
    if other in it:
        problems.append(f"{_loc(path, line, other)}: not used by a {style}-style task (use {prompt!r})")
    ans = it.get("answer")
    if kind == "choice":
        ch = it.get("choices")
        if not isinstance(ch, list) or len(ch) < 2 or not all(isinstance(c, str) and c for c in ch):
            problems.append(f"{_loc(path, line, 'choices')}: required, a list of at least 2 non-empty strings")
            return
        if len(set(ch)) != len(ch):
            problems.append(f"{_loc(path, line, 'choices')}: the choices must differ")
        if not isinstance(ans, int) or isinstance(ans, bool):
            problems.append(f"{_loc(path, line, 'answer')}: required, the index of the right choice (an integer)")
        elif not 0 <= ans < len(ch):
            problems.append(f"{_loc(path, line, 'answer')}: index {ans} out of range for {len(ch)} choices")
    else:
        ok = isinstance(ans, str) or (isinstance(ans, list) and ans and all(isinstance(a, str) for a in ans))
        if not ok:
            problems.append(f"{_loc(path, line, 'answer')}: required, a string or a non-empty list of strings")
        ch = it.get("chance", 0.0)
        if not isinstance(ch, (int, float)) or isinstance(ch, bool) or not 0 <= ch < 1:
            problems.append(f"{_loc(path, line, 'chance')}: must be a number in [0, 1), got {ch!r}")


def parse_task_lines(lines, path="<task>") -> tuple[Task | None, list[str]]:
    """Parse and check a task file's lines; ``(task or None, problems)``."""
    problems: list[str] = []
    header, items = None, []
    for n, raw in enumerate(lines, 1):
        if len(problems) >= MAX_PROBLEMS:
            break
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append(f"{_loc(path, n)}: not valid JSON ({e.msg} at column {e.colno})")
            if header is None:
                return None, problems
            continue
        if header is None:
            if n != 1:
                problems.append(f"{_loc(path, n)}: the header must be on line 1")
            _check_header(obj, path, problems)
            if problems:
                return None, problems
            header = obj
            continue
        before = len(problems)
        _check_item(obj, header["kind"], header.get("style", "text"), path, n, problems)
        if len(problems) == before:
            items.append(obj)
    if header is None:
        return None, problems or [f"{path}: empty task file (line 1 must be the header)"]
    if not items and not problems:
        problems.append(f"{path}: the task has no items")
    if problems:
        return None, problems
    return Task(name=header["name"], kind=header["kind"], items=items, style=header.get("style", "text"),
                metric=header.get("metric", "acc"), few_shot=list(header.get("few_shot", [])),
                max_new_tokens=header.get("max_new_tokens", 32), stop=tuple(header.get("stop", ["\n"])),
                description=header.get("description", ""), source=header.get("source", ""),
                seed=header.get("seed"), suite_version=header.get("suite_version"), path=str(path)), []


def _read_lines(path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise LlmlabError(f"{p}: task file not found")
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise LlmlabError(f"{p}: not UTF-8 text ({e.reason})") from None


def validate_task_file(path) -> list[str]:
    """Every problem of a task file (empty when it is valid), each ``file:line: field 'x': ...``."""
    _, problems = parse_task_lines(_read_lines(path), path)
    return problems


def load_task(path) -> Task:
    """A task from a JSONL file; a malformed file raises ``LlmlabError`` naming its first problem."""
    task, problems = parse_task_lines(_read_lines(path), path)
    if problems:
        more = f" (and {len(problems) - 1} more problems; `llmlab eval validate {path}` lists them)" if len(problems) > 1 else ""
        raise LlmlabError(problems[0] + more)
    return task


def write_task(path, task: Task) -> Path:
    """Write a task as JSONL (header line, then one item per line), atomically."""
    from llmlab.utils.io import atomic_write

    path = Path(path)
    with atomic_write(path) as f:
        f.write(json.dumps(task.header(), ensure_ascii=False) + "\n")
        for it in task.items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    return path
