"""The tool-use evaluation's numbers, on scripted models whose right and wrong answers are known: arithmetic with
and without the calculator, recall@5, accuracy with and without retrieval, citation validity, "I don't know" rates.

    .venv/bin/pytest tests/eval/test_tools_eval.py -q
"""

import pytest

from _scripted_model import ScriptedModel, native_script, searcher
from llmlab.eval.tools_eval import arithmetic_eval, grounded_eval
from llmlab.tokenizer import Tokenizer
from llmlab.tools.retrieval import IndexConfig, build_index


@pytest.fixture(scope="module")
def tok():
    return Tokenizer([])


def test_arithmetic_with_and_without_the_calculator(tok):
    model = ScriptedModel(tok.vocab_size, native_script(tok))
    tasks = [{"prompt": "12*34", "answer": "= 408", "op": "*"}, {"prompt": "100+23", "answer": "= 123", "op": "+"},
             {"prompt": "9-2", "answer": "= 8", "op": "-"}]  # the script answers " = RESULT"; the last is wrong
    r = arithmetic_eval(model, tok, tasks, max_new_tokens=80)
    assert r["with_tool"] == pytest.approx(2 / 3) and r["without_tool"] == 0.0 and r["called_tool"] == 1.0
    assert r["by_op"]["*"] == {"n": 1, "with_tool": 1.0, "without_tool": 0.0}
    assert r["samples"][0]["without_tool"].endswith("<|tool_call|>calc 12*34<|/tool_call|>")


def test_grounded_metrics(tok, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("The mayor of Quellport is Brunsk.\n\nQuellport was founded in 1643.\n")
    (docs / "b.txt").write_text("Brindle Works makes lanterns.\n")
    build_index(docs, tmp_path / "idx", IndexConfig(chunk_chars=60))
    qa = [{"question": "Who is the mayor of Quellport?", "answer": "Brunsk"},  # right, cites [1] validly
          {"question": "What does Brindle Works make?", "answer": "lanterns"},  # right
          {"question": "When was Quellport founded?", "answer": "1643"},  # the script answers passage 1's last word
          {"question": "Who is the mayor of Quellport?", "answer": "1643"},  # a gold the cited passage lacks
          {"question": "Who is the mayor of Dravelmoor?", "answer": None},  # nothing relevant: "I don't know"
          {"question": "What does Gessel Guild make?", "answer": None}]
    model = ScriptedModel(tok.vocab_size, searcher(tok))
    r = grounded_eval(model, tok, tmp_path / "idx", qa, max_new_tokens=80)
    assert (r["n_answerable"], r["n_unanswerable"]) == (4, 2)
    assert r["recall_at_5"] == 1.0  # (1643 is in the index too)
    assert r["idk_rate_unanswerable"] == 1.0 and r["idk_rate_answerable"] == 0.0
    assert r["called_search"] == 1.0 and r["cited_answers"] == 4
    # "When was Quellport founded?" ranks the founding paragraph first, whose last word is 1643: right. The wrong
    # gold is a wrong answer whose cited passage does not hold the gold.
    assert r["accuracy_with_retrieval"] == 0.75 and r["citation_validity"] == 0.75
    assert r["accuracy_without_retrieval"] == 0.0 and r["accuracy_ratio"] is None
