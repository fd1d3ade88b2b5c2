"""The data that teaches the tools: calculator conversations (the call trained, the result masked, exact results,
split by item), the made-up document world (names split, every fact findable), document questions answered
from real search results with the right citation or "I don't know", and the SFT mix.

    .venv/bin/pytest tests/tasks -q
"""

import random

import pytest

from llmlab.chat.template import render, render_text
from llmlab.tasks.calc_tasks import calc_conversations, calc_tasks, direct_kind
from llmlab.tasks.docqa import IDK, answer_passage, document, make_world, qa_conversation, questions, write_documents
from llmlab.tokenizer import Tokenizer
from llmlab.tools.calc import calculate


@pytest.fixture(scope="module")
def tok():
    return Tokenizer([])


def test_calc_conversation_renders_call_masked_result_and_answer(tok):
    [c] = calc_conversations(1, "train", seed=3)
    call, result = c.messages[-1]["content"][0]["text"], c.meta["answer"]
    assert call.startswith("calc ") and calculate(call[5:]) == result
    text = render_text(c.messages)
    assert text.endswith(f"<|assistant|><|tool_call|>{call}<|/tool_call|><|tool_result|>{result}<|/tool_result|>"
                         f"{result}<|end|>")
    ids, mask = render(c.messages, tok)
    trained = tok.decode([i for i, m in zip(ids, mask) if m])
    assert trained == f"<|tool_call|>{call}<|/tool_call|>{result}<|end|>"  # the result block is not a target


def test_calc_items_are_exact_split_and_not_the_direct_kind():
    train = calc_tasks(400, "train", seed=0)
    val = calc_tasks(400, "val", seed=0)
    key = lambda t: t["prompt"]  # noqa: E731
    for t in train + val:
        a, b = map(int, [w.strip("?.") for w in t["prompt"].replace(",", " ").split() if w.strip("?.").isdigit()][:2])
        op = t["op"]
        assert 10 <= min(a, b) and max(a, b) <= 999 and not direct_kind(max(a, b), min(a, b), op)
        assert t["answer"] == calculate(f"{a} {op} {b}") or t["answer"] == calculate(f"{b} {op} {a}")
        assert int(t["answer"]) >= 0
    nums = lambda ts: {tuple(sorted(int(w.strip("?.")) for w in t["prompt"].split() if w.strip("?.").isdigit())) + (t["op"],)  # noqa: E731
                       for t in ts}
    assert not nums(train) & nums(val)  # no held-out item in training under any phrasing
    assert {t["op"] for t in val} == {"+", "-", "*"} and len(set(map(key, val))) > 350
    assert direct_kind(23, 45, "+") and not direct_kind(27, 45, "+") and not direct_kind(23, 45, "*")


def test_world_names_split_and_every_fact_findable(tmp_path):
    train = make_world(90, "train", seed=0)
    val = make_world(90, "val", seed=0)
    names = lambda w: {e.name for e in w} | {v for e in w for v in e.facts.values() if v[0].isupper()}  # noqa: E731
    assert not names(train) & names(val)
    assert len({e.name for e in train}) == 90 and {e.kind for e in train} == {"town", "company", "person"}
    for e in train:
        doc = document(e)
        assert all(e.name in para for para in doc.split("\n\n"))  # each paragraph can be found on its own
        assert all(v in doc for v in e.facts.values())
    files = write_documents(train, tmp_path / "docs", jsonl_every=10)
    suffixes = {f.rsplit(".", 1)[1] for f in files}
    assert suffixes == {"md", "txt", "html", "jsonl"} and len(files) == 90 - 9 + 1
    absent = make_world(30, "train", seed=5, taken={e.name for e in train})
    qa = questions(train, 300, seed=1, unanswerable=0.3, absent=absent)
    unans = [q for q in qa if q["answer"] is None]
    assert 50 < len(unans) < 130 and all(q["entity"] in {e.name for e in absent} for q in unans)
    for q in qa:
        if q["answer"] is not None:
            e = next(x for x in train if x.name == q["entity"])
            assert q["entity"] in q["question"] and q["answer"] == e.facts[q["fact"]]


def test_qa_conversation_cites_the_passage_that_holds_the_answer(tok):
    q = {"question": "When was Quellport founded?", "answer": "1643"}
    result = "[1] The mayor of Quellport is Talia Brunsk.\n[2] Quellport was founded in 1643."
    assert answer_passage(result, "1643") == 2
    c = qa_conversation(q, result)
    assert c.messages[-1]["content"][-1]["text"] == "1643 [2]" and c.meta["cited"] == 2
    assert c.messages[-1]["content"][0]["text"] == "search When was Quellport founded?"
    ids, mask = render(c.messages, tok)
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == \
        "<|tool_call|>search When was Quellport founded?<|/tool_call|>1643 [2]<|end|>"
    assert qa_conversation(q, "[1] The mayor of Quellport is Talia Brunsk.").messages[-1]["content"][-1]["text"] == IDK
    none = qa_conversation({"question": "When was Dravelmoor founded?", "answer": None}, "no results: ...")
    assert none.messages[-1]["content"][-1]["text"] == IDK and none.meta["answerable"] is False
    s = qa_conversation(q, result, random.Random(0), system=True)
    assert s.messages[0]["role"] == "system"


def test_tool_conversations_use_the_real_retriever():
    from llmlab.tasks.docqa import document as doc
    from llmlab.tools.retrieval import Index, IndexConfig, search_text
    from llmlab.tools.teach import ToolDataConfig, tool_conversations

    cfg = ToolDataConfig(calc=50, docqa=120, docqa_entities=60)
    convs = tool_conversations(cfg, "train", seed=0)
    kinds = [c.meta["kind"] for c in convs]
    assert kinds.count("calc") == 50 and kinds.count("docqa") == 120 and kinds[:50].count("calc") < 50  # shuffled
    index = Index.from_texts([(e.name, doc(e)) for e in make_world(60, "train", 0)], IndexConfig(chunk_chars=160))
    dq = [c for c in convs if c.meta["kind"] == "docqa"]
    for c in dq:
        parts = c.messages[-1]["content"]
        assert parts[1]["text"] == search_text(index, c.messages[-2]["content"], cfg.search)
    answerable = [c for c in dq if c.meta["answerable"]]
    assert sum(c.meta["cited"] is not None for c in answerable) >= 0.95 * len(answerable)  # retrieval finds them
    assert all(c.meta["answer"] == IDK for c in dq if not c.meta["answerable"])


def test_grpo_tool_tasks_are_written_with_their_index(tmp_path):
    import json

    from llmlab.tools.retrieval import Index, search_text
    from llmlab.tools.teach import write_tool_tasks

    info = write_tool_tasks(tmp_path, n_calc=20, n_docqa=30, n_val=10, entities=24)
    assert (info["n_docqa_train"], info["n_docqa_val"]) == (30, 10)
    read = lambda name: [json.loads(x) for x in (tmp_path / name).read_text().splitlines()]  # noqa: E731
    assert len(read("tools_train.jsonl")) == 50 and len(read("tools_val.jsonl")) == 20
    index = Index.load(tmp_path / "index")
    for t in read("docqa_train.jsonl"):
        result = search_text(index, t["prompt"])
        if t["answerable"] and t["answer"] != IDK:
            fact, n = t["answer"].rsplit(" [", 1)
            assert answer_passage(result, fact) == int(n[:-1])  # the reply cites the passage holding the fact
        else:
            assert t["answer"] == IDK
    assert sum(t["answer"] != IDK for t in read("docqa_train.jsonl")) > 15
