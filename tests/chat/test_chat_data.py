"""JSONL conversation data: both formats, errors naming file, line and field, and --skip-bad counting."""

import json

import pytest

from llmlab.chat.data import Conversation, load_conversations, write_conversations
from llmlab.errors import LlmlabError


def _write(tmp_path, lines):
    p = tmp_path / "chats.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                   "kind": "greeting"})


def test_both_formats_and_meta(tmp_path):
    p = _write(tmp_path, [GOOD, "", json.dumps({"prompt": "2+2?", "completion": "4", "system": "Be brief."})])
    convs, bad = load_conversations(p)
    assert bad == 0 and len(convs) == 2
    assert convs[0].meta == {"kind": "greeting"}
    assert convs[1].messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                                 {"role": "assistant", "content": "4"}]


@pytest.mark.parametrize("line, expect", [
    ("{not json", r"chats.jsonl:2: malformed JSON"),
    ("[1, 2]", r"chats.jsonl:2: expected a JSON object"),
    (json.dumps({"text": "x"}), r"chats.jsonl:2: expected field 'messages'"),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}), r"chats.jsonl:2: messages\[0\]: field 'role'"),
    (json.dumps({"messages": [{"role": "user", "content": None}]}), r"chats.jsonl:2: .*field 'content'"),
    (json.dumps({"messages": [{"role": "user", "content": "only a question"}]}), r"chats.jsonl:2: .*no assistant"),
    (json.dumps({"prompt": "x"}), r"chats.jsonl:2: field 'completion' is missing"),
    (json.dumps({"prompt": 3, "completion": "y"}), r"chats.jsonl:2: field 'prompt'"),
])
def test_errors_name_file_line_and_field(tmp_path, line, expect):
    p = _write(tmp_path, [GOOD, line, GOOD])
    with pytest.raises(LlmlabError, match=expect):
        load_conversations(p)
    convs, bad = load_conversations(p, skip_bad=True)
    assert (len(convs), bad) == (2, 1)


def test_missing_empty_and_all_bad(tmp_path):
    with pytest.raises(LlmlabError, match="not found"):
        load_conversations(tmp_path / "nope.jsonl")
    p = _write(tmp_path, ["{bad", "{worse"])
    with pytest.raises(LlmlabError, match="2 malformed lines skipped"):
        load_conversations(p, skip_bad=True)


def test_write_then_load_round_trips(tmp_path):
    convs = [Conversation([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                          {"kind": "k", "answer": "a"})]
    assert write_conversations(tmp_path / "o.jsonl", convs) == 1
    back, _ = load_conversations(tmp_path / "o.jsonl")
    assert back[0].messages == convs[0].messages and back[0].meta == convs[0].meta
