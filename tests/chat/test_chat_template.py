"""The chat template: golden ids and mask, tool segments, Jinja equivalence, the overflow policy."""

import jinja2
import pytest

from llmlab.chat.template import (CHAT_TEMPLATE, fit_messages, render, render_prompt, render_text,
                                  split_think, validate_messages)
from llmlab.errors import LlmlabError

# Byte tokenizer ids of the special tokens (DESIGN.md order after the 256 bytes).
BOS, SYS, USER, ASST, END = 256, 259, 260, 261, 262
CALL, CALL_END, RES, RES_END = 263, 264, 265, 266

CONVO = [
    {"role": "system", "content": "Hi"},
    {"role": "user", "content": "2+3?"},
    {"role": "assistant", "content": "5"},
]


def test_golden_ids_and_mask(byte_tok):
    ids, mask = render(CONVO, byte_tok)
    assert ids == [BOS, SYS, ord("H"), ord("i"), END, USER, ord("2"), ord("+"), ord("3"), ord("?"), END,
                   ASST, ord("5"), END]
    # Only the answer "5" and the <|end|> closing the assistant turn are targets.
    assert mask == [0] * 12 + [1, 1]


def test_golden_tool_turn(byte_tok):
    msgs = [{"role": "user", "content": "a"},
            {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "tool_call", "text": "c"},
                                              {"type": "tool_result", "text": "d"}, {"type": "text", "text": "e"}]}]
    ids, mask = render(msgs, byte_tok)
    assert ids == [BOS, USER, 97, END, ASST, 98, CALL, 99, CALL_END, RES, 100, RES_END, 101, END]
    assert mask == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1]
    # The OpenAI-style spelling (assistant, tool, assistant) renders the very same turn.
    split = [{"role": "user", "content": "a"},
             {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "tool_call", "text": "c"}]},
             {"role": "tool", "content": "d"},
             {"role": "assistant", "content": "e"}]
    assert render(split, byte_tok) == (ids, mask)


def test_multi_turn_mask_covers_every_answer(small_tok):
    msgs = [{"role": "user", "content": "What is 12 plus 7?"}, {"role": "assistant", "content": "19."},
            {"role": "user", "content": "Spell night."}, {"role": "assistant", "content": "n-i-g-h-t."}]
    ids, mask = render(msgs, small_tok)
    answers = small_tok.decode([i for i, m in zip(ids, mask) if m])
    assert answers == "19.<|end|>n-i-g-h-t.<|end|>"
    assert small_tok.decode(ids) == render_text(msgs)


def test_user_text_never_becomes_special(byte_tok):
    ids, _ = render([{"role": "user", "content": "<|end|>"}], byte_tok)
    assert ids.count(END) == 1  # only the real end of the turn


def test_prompt_ends_with_assistant(byte_tok):
    ids = render_prompt(CONVO[:2], byte_tok)
    assert ids[-1] == ASST and ids[:-1] == render(CONVO[:2], byte_tok)[0]
    # After a tool result the assistant's turn is still open: no new role token.
    msgs = CONVO[:2] + [{"role": "assistant", "content": [{"type": "tool_call", "text": "x"}]},
                        {"role": "tool", "content": "y"}]
    assert render_prompt(msgs, byte_tok)[-1] == RES_END


def test_golden_think_turn(byte_tok):
    # The chain of thought renders between <|think|> and <|/think|>, and is a training target like the answer.
    THINK, THINK_END = 267, 268
    msgs = [{"role": "user", "content": "a"},
            {"role": "assistant", "content": [{"type": "think", "text": "t"}, {"type": "text", "text": "b"}]}]
    ids, mask = render(msgs, byte_tok)
    assert ids == [BOS, USER, 97, END, ASST, THINK, 116, THINK_END, 98, END]
    assert mask == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert byte_tok.decode(ids[5:9]) == "<|think|>t<|/think|>b"


def test_split_think():
    assert split_think("<|think|>4 + 8 = 12\n2 * 12 = 24<|/think|>(4 + 8) * 2 = 24") == (
        "4 + 8 = 12\n2 * 12 = 24", "(4 + 8) * 2 = 24")
    assert split_think("<think>x</think> y") == ("x", "y")  # other models' spelling
    assert split_think("just an answer") == ("", "just an answer")
    assert split_think("<|think|>ran out of tok") == ("ran out of tok", "")  # no answer when it never closes


JINJA_CASES = [
    CONVO,
    CONVO[1:],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "tool_call", "text": "f(1)"}]},
     {"role": "tool", "content": "2"}, {"role": "tool", "content": "3"}, {"role": "assistant", "content": "ok"},
     {"role": "user", "content": "bye"}, {"role": "assistant", "content": "bye"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "tool_call", "text": "f"}]},
     {"role": "tool", "content": "r"}, {"role": "user", "content": "next"}],
    [{"role": "user", "content": "a"},
     {"role": "assistant", "content": [{"type": "think", "text": "hm"}, {"type": "text", "text": "b"}]}],
    [],
]


@pytest.mark.parametrize("msgs", JINJA_CASES)
@pytest.mark.parametrize("gen", [False, True])
def test_jinja_template_renders_the_same_text(msgs, gen):
    # The environment Hugging Face uses for chat templates (trim_blocks, lstrip_blocks).
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(CHAT_TEMPLATE).render(messages=msgs, add_generation_prompt=gen)
    assert text == render_text(msgs, add_generation_prompt=gen)


def test_ids_equal_encoding_the_rendered_text(small_tok):
    for msgs in JINJA_CASES:
        assert render(msgs, small_tok)[0] == small_tok.encode(render_text(msgs), allowed_special="all")


def _convo(n_exchanges):
    msgs = [{"role": "system", "content": "S"}]
    for i in range(n_exchanges):
        msgs += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    return msgs


def test_overflow_drops_oldest_exchanges_keeps_system(byte_tok):
    msgs = _convo(5)
    full, _ = render(msgs, byte_tok)
    assert len(full) == 4 + 5 * 8  # <|bos|><|system|>S<|end|>, then 8 tokens per exchange
    kept = fit_messages(msgs, byte_tok, max_len=len(full) - 1)
    assert kept[0] == msgs[0] and kept[1:] == msgs[3:]  # exactly the oldest exchange went
    ids, mask = render(msgs, byte_tok, max_len=4 + 2 * 8)
    assert ids == render([msgs[0]] + msgs[-4:], byte_tok)[0]  # the two newest exchanges, whole
    assert mask == render([msgs[0]] + msgs[-4:], byte_tok)[1]
    # Without a system prompt the same policy drops the oldest exchanges.
    ids, _ = render(msgs[1:], byte_tok, max_len=1 + 8)
    assert byte_tok.decode(ids) == "<|bos|><|user|>q4<|end|><|assistant|>a4<|end|>"


def test_overflow_keeps_last_user_turn_then_cuts(byte_tok):
    msgs = _convo(3)
    # Room for the system turn and a prompt of the last user message only.
    prompt = render_prompt(msgs[:-1], byte_tok, max_len=4 + 5)
    assert byte_tok.decode(prompt) == "<|bos|><|system|>S<|end|><|user|>q2<|end|><|assistant|>"
    # Less room than that: the system turn stays, the oldest tokens after it go, the prompt still ends right.
    prompt = render_prompt(msgs[:-1], byte_tok, max_len=7)
    assert prompt == [BOS, SYS, ord("S"), END, ord("2"), END, ASST]
    # Training render: nothing more may be dropped, so the end is cut (SFT then skips the conversation).
    ids, mask = render(msgs, byte_tok, max_len=4 + 6)
    assert len(ids) == 10 and ids[-1] != END and byte_tok.decode(ids).endswith("<|assistant|>a")
    with pytest.raises(LlmlabError, match="system prompt"):
        render_prompt([{"role": "system", "content": "x" * 50}, {"role": "user", "content": "q"}], byte_tok, max_len=20)


@pytest.mark.parametrize("bad, msg", [
    ("hello", "list of messages"),
    ([{"role": "bot", "content": "x"}], "field 'role'"),
    ([{"role": "user", "content": 3}], "field 'content'"),
    ([{"role": "user", "content": "x"}, {"role": "system", "content": "y"}], "system message"),
    ([{"role": "tool", "content": "x"}], "tool message"),
    ([{"role": "assistant", "content": [{"type": "image", "text": "x"}]}], "content\\[0\\]"),
])
def test_validation_errors(bad, msg):
    with pytest.raises(LlmlabError, match=msg):
        validate_messages(bad, where="f.jsonl:3")
