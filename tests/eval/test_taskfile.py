"""Task files: the format round-trips, and every malformed line is named as file:line: field.

    .venv/bin/pytest tests/eval/test_taskfile.py -q
"""

import json

import pytest

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.eval.taskfile import Task, load_task, validate_task_file, write_task

HEADER = {"format": "llmlab-eval-task", "version": 1, "name": "capitals", "kind": "choice"}


def _write(tmp_path, lines, name="t.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return p


def test_round_trip(tmp_path):
    task = Task(name="qa", kind="generate", style="qa", items=[{"question": "2 + 3?", "answer": "5", "group": "add"},
                                                                {"question": "Spell it.", "answer": ["i-t", "it"]}],
                few_shot=[{"question": "1 + 1?", "answer": "2"}], max_new_tokens=8, stop=("\n", "."), seed=3)
    p = write_task(tmp_path / "qa.jsonl", task)
    back = load_task(p)
    assert back.items == task.items and back.header() == task.header() and back.sha256() == task.sha256()
    assert validate_task_file(p) == []
    assert back.chance() == 0.0


def test_chance_of_mixed_choice_counts(tmp_path):
    p = _write(tmp_path, [HEADER, {"context": "a", "choices": ["x", "y"], "answer": 0},
                          {"context": "b", "choices": ["x", "y", "z", "w"], "answer": 3}])
    assert load_task(p).chance() == pytest.approx((1 / 2 + 1 / 4) / 2)


def test_problems_name_file_line_and_field(tmp_path):
    p = _write(tmp_path, [
        HEADER,
        {"context": "The capital of France is", "choices": [" Paris", " Rome"], "answer": 0},  # line 2: fine
        {"context": "x", "choices": [" a", " b"], "answer": 2},  # line 3: out of range
        {"context": "x", "choices": [" a"], "answer": 0},  # line 4: one choice
        {"choices": [" a", " b"], "answer": 0},  # line 5: no context
        {"context": "x", "choices": [" a", " b"], "anwser": 0},  # line 6: misspelt field (and no answer)
        "{not json",  # line 7
        {"context": 3, "choices": [" a", " b"], "answer": True},  # line 8: wrong types
        {"question": "q?", "context": "x", "choices": [" a", " b"], "answer": 1},  # line 9: a qa field in a text task
    ])
    problems = validate_task_file(p)
    want = [f"{p}:3: field 'answer': index 2 out of range for 2 choices",
            f"{p}:4: field 'choices': required",
            f"{p}:5: field 'context': required",
            f"{p}:6: field 'anwser': unknown field",
            f"{p}:6: field 'answer': required",
            f"{p}:7: not valid JSON",
            f"{p}:8: field 'context': must be a string",
            f"{p}:8: field 'answer': required",
            f"{p}:9: field 'question': not used by a text-style task"]
    assert len(problems) == len(want)
    for got, w in zip(problems, want):
        assert got.startswith(w), (got, w)
    with pytest.raises(LlmlabError, match=r"t\.jsonl:3: field 'answer': index 2 out of range .*and 8 more"):
        load_task(p)


def test_header_problems(tmp_path):
    p = _write(tmp_path, [{"format": "llmlab-eval-task", "version": 2, "name": "bad name", "kind": "essay",
                           "style": "text", "colour": "red"}, {"context": "", "choices": ["a", "b"], "answer": 0}])
    problems = validate_task_file(p)
    assert problems[0].startswith(f"{p}:1: field 'version': must be 1")
    fields = {x.split("field '")[1].split("'")[0] for x in problems}
    assert fields == {"version", "colour", "name", "kind"}
    # Items first, no header at all:
    p = _write(tmp_path, [{"context": "", "choices": ["a", "b"], "answer": 0}], "nohead.jsonl")
    assert validate_task_file(p)[0].startswith(f"{p}:1: field 'format': must be 'llmlab-eval-task'")
    with pytest.raises(LlmlabError, match="task file not found"):
        load_task(tmp_path / "missing.jsonl")
    p = _write(tmp_path, [HEADER], "empty.jsonl")
    assert validate_task_file(p) == [f"{p}: the task has no items"]


def test_qa_and_bpb_items(tmp_path):
    head = {**HEADER, "kind": "generate", "style": "qa", "few_shot": [{"question": "q", "answer": 5}]}
    p = _write(tmp_path, [head, {"question": "", "answer": "x"}, {"question": "q", "answer": []}])
    problems = validate_task_file(p)
    assert problems[0].startswith(f"{p}:1: field 'few_shot'")
    head["few_shot"] = []
    p = _write(tmp_path, [head, {"question": "", "answer": "x"}, {"question": "q", "answer": []}])
    assert [x.split(": ", 2)[:2] for x in validate_task_file(p)] == [[str(p) + ":2", "field 'question'"],
                                                                      [str(p) + ":3", "field 'answer'"]]
    p = _write(tmp_path, [head, {"question": "Which is larger, 3 or 9?", "answer": "9", "chance": 0.5},
                          {"question": "q", "answer": "x", "chance": 1.5}])
    assert [x.split(": ", 2)[:2] for x in validate_task_file(p)] == [[str(p) + ":3", "field 'chance'"]]
    p = _write(tmp_path, [head, {"question": "Which is larger, 3 or 9?", "answer": "9", "chance": 0.5},
                          {"question": "q", "answer": "x"}])
    assert load_task(p).chance() == 0.25
    p = _write(tmp_path, [{**HEADER, "kind": "bpb"}, {"text": ""}, {"text": "fine", "group": 1}])
    assert [x.split(": ", 2)[:2] for x in validate_task_file(p)] == [[str(p) + ":2", "field 'text'"],
                                                                      [str(p) + ":3", "field 'group'"]]


def test_validate_command(tmp_path, capsys):
    good = _write(tmp_path, [HEADER, {"context": "x", "choices": [" a", " b"], "answer": 1}], "good.jsonl")
    bad = _write(tmp_path, [HEADER, {"context": "x", "choices": [" a", " b"], "answer": 5}], "bad.jsonl")
    assert main(["eval", "validate", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: ok"
    assert main(["eval", "validate", str(good), str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"{bad}:2: field 'answer': index 5 out of range for 2 choices"
    # A malformed file given to the suite is one line naming the place, exit 2.
    assert main(["eval", "suite", "--model", str(tmp_path), "--tasks", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"llmlab: error: {bad}:2: field 'answer'") and err.count("\n") == 1
