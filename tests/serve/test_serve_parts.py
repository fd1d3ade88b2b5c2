"""The server's parts without HTTP: request parsing and error shapes, tool calls in and out of the chat template,
the per-sample text edge (stop strings, held tool calls), JSON-mode constraints and the metrics text.

    .venv/bin/pytest tests/serve/test_serve_parts.py -q
"""

import json

import pytest

pytest.importorskip("pydantic", reason="pydantic is not installed (the serve extra)")

from llmlab.infer.engine import TokenEvent  # noqa: E402
from llmlab.serve.chat_format import parse_tool_calls, prompt_ids  # noqa: E402
from llmlab.serve.metrics import Metrics  # noqa: E402
from llmlab.serve.protocol import ApiError, ChatRequest, CompletionRequest, parse_body  # noqa: E402
from llmlab.serve.scheduler import SampleText  # noqa: E402


def test_parse_body_names_the_field():
    ok = parse_body(b'{"model": "m", "messages": [{"role": "developer", "content": "x"}], "n": 2}', ChatRequest)
    assert ok.n == 2 and ok.messages[0].role == "developer"
    cases = [(b"{", None), (b"[]", None), (b"\xff", None), (b'{"model": "m", "temperature": NaN, "messages": []}', None),
             (b'{"model": "m", "messages": [{"role": "robot", "content": "x"}]}', "messages[0].role"),
             (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": "2"}', "n"),
             (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": 1}', "stream"),
             (b'{"model": "m", "prompt": [1, "a"]}', "prompt")]
    for raw, param in cases:
        with pytest.raises(ApiError) as e:
            parse_body(raw, CompletionRequest if b"prompt" in raw else ChatRequest)
        assert e.value.status == 400 and e.value.param == param
        assert set(e.value.body()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(ApiError, match="not valid JSON"):
        parse_body(b'{"model": "m", "prompt": "x", "u": ' + b"[" * 100000 + b"]" * 100000 + b"}", CompletionRequest)


def test_tool_calls_parse_from_every_spelling():
    call = '{"name": "calc", "arguments": {"expression": "2+3"}}'
    for text, content in [(f"Let me add.<|tool_call|>{call}<|/tool_call|>", "Let me add."),
                          (f"<|tool_call|>{call}", ""), (f"ok <tool_call>{call}</tool_call>", "ok "),
                          (call, ""), ("<|python_tag|>" + call.replace("arguments", "parameters"), "")]:
        got_content, calls = parse_tool_calls(text)
        assert got_content == content
        assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == \
            [("calc", {"expression": "2+3"})]
    assert parse_tool_calls("no call {here") == ("no call {here", [])
    assert parse_tool_calls("<|tool_call|>not json<|/tool_call|>")[1] == []
    assert parse_tool_calls(call, forced_body=True)[1][0]["function"]["name"] == "calc"


def test_tools_and_tool_messages_in_the_native_template(serve_tok):
    req = parse_body(json.dumps({"model": "m", "messages": [
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"expression": "2+3"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "5"}]}).encode(), ChatRequest)
    tools = [{"name": "calc", "description": "Add.", "parameters": {"type": "object"}}]
    ids = prompt_ids(req.messages, serve_tok, tools)
    text = serve_tok.decode(ids)
    assert text.startswith("<|bos|><|system|>You can call these functions.")
    assert '{"name": "calc", "description": "Add."' in text
    assert text.endswith('<|assistant|><|tool_call|>{"name": "calc", "arguments": {"expression": "2+3"}}'
                         '<|/tool_call|><|tool_result|>5<|/tool_result|>')
    forced = prompt_ids(req.messages[:1], serve_tok, tools, force_call=True)
    assert forced[-2:] == [serve_tok.special_id("<|assistant|>"), serve_tok.special_id("<|tool_call|>")]


def events(ids, finish="length"):
    return [TokenEvent(0, 0, t, i, finish_reason=finish if i == len(ids) - 1 else None) for i, t in enumerate(ids)]


def test_sample_text_cuts_stop_strings_and_holds_tool_calls(serve_tok):
    end = serve_tok.end_id
    st = SampleText(serve_tok, {end}, ("lo w",), None, False)
    ids = serve_tok.encode("hello world") + [end]
    out, stopped_at = [], None
    for i, ev in enumerate(events(ids, "stop")):
        text, _, stopped = st.feed(ev)
        out.append(text)
        if stopped:
            stopped_at = i
            break
    assert "".join(out) == "hel" and stopped_at is not None and st.result("stop")[:2] == ("stop", "hel")
    # A tool call in auto mode: the text before it streams, the call is held and parsed at the end.
    call = serve_tok.encode('{"name": "f", "arguments": {}}')
    ids = serve_tok.encode("Sure.") + [serve_tok.special_id("<|tool_call|>")] + call + \
        [serve_tok.special_id("<|/tool_call|>")]
    st = SampleText(serve_tok, {serve_tok.special_id("<|/tool_call|>")}, (), "auto", False)
    shown = "".join(st.feed(ev)[0] for ev in events(ids, "stop"))
    assert shown == "Sure."
    reason, content, calls = st.result("stop")
    assert reason == "tool_calls" and content == "Sure." and calls[0]["function"]["name"] == "f"


def test_json_constraint_allows_only_valid_continuations(serve_tok):
    pytest.importorskip("xgrammar", reason="xgrammar is not installed")
    from llmlab.serve.grammar import Grammars

    g = Grammars(serve_tok, serve_tok.vocab_size, [serve_tok.end_id])
    c = g.json_schema({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})()
    allowed = c.allowed()
    assert allowed.shape == (serve_tok.vocab_size,) and allowed[ord("{")] and not allowed[ord("a")]
    assert not any(allowed[i] for i in range(serve_tok.vocab_size) if serve_tok.is_special(i))
    for t in serve_tok.encode('{"ok": true}'):
        assert c.allowed()[t]
        c.advance(t)
    assert not c.done() and c.allowed().nonzero().flatten().tolist() == [serve_tok.end_id]
    c.advance(serve_tok.end_id)
    assert c.done()
    from llmlab.errors import LlmlabError

    with pytest.raises(LlmlabError, match="cannot be used"):
        g.json_schema({"type": "no-such-type"})


def test_metrics_text_format():
    m = Metrics()
    m.requests.inc(endpoint="chat", status="200")
    m.requests.inc(endpoint="chat", status="200")
    m.ttft.observe(0.003)
    m.ttft.observe(100.0)
    text = m.render()
    assert 'llmlab_requests_total{endpoint="chat",status="200"} 2' in text
    assert 'llmlab_time_to_first_token_seconds_bucket{le="0.005"} 1' in text
    assert 'llmlab_time_to_first_token_seconds_bucket{le="+Inf"} 2' in text
    assert "llmlab_time_to_first_token_seconds_count 2" in text and "# TYPE llmlab_num_requests_running gauge" in text


def test_merge_deltas_joins_each_choices_text_and_keeps_its_order():
    from llmlab.serve.app import merge_deltas

    t = [(7, -0.1, None), (8, -0.2, None), (9, -0.3, None), (10, -0.4, None)]
    items = [("delta", 0, "a", [t[0]]), ("delta", 1, "x", [t[1]]), ("delta", 0, "b", [t[2]]),
             ("finish", 0, "stop", "ab", None), ("delta", 1, "y", [t[3]]), ("finish", 1, "length", "xy", None),
             ("usage", 5, 4)]
    assert merge_deltas(items) == [("delta", 0, "ab", [t[0], t[2]]), ("delta", 1, "xy", [t[1], t[3]]),
                                   ("finish", 0, "stop", "ab", None), ("finish", 1, "length", "xy", None),
                                   ("usage", 5, 4)]
    # a delta after its choice's finish (never sent, but order must hold) and after an error stay apart
    after = [("delta", 0, "a", []), ("finish", 0, "stop", "a", None), ("delta", 0, "b", []),
             ("error", None), ("delta", 1, "c", [])]
    assert merge_deltas(after) == after
    one = [("delta", 0, "a", [t[0]])]
    assert merge_deltas(one) == one and merge_deltas([]) == []
