"""The text edge: UTF-8-safe incremental decoding (Chinese split across tokens), stop strings spanning token
boundaries (held back, cut, and the sample ended in the engine), and generate_text / stream_text end to end
on a "scripted" model that deterministically produces a chosen token sequence.

    .venv/bin/pytest tests/infer/test_text.py -q
"""

import pytest
import torch

from llmlab.infer import Engine, SamplingParams
from llmlab.infer.text import StopMatcher, Utf8Decoder, generate_text, stop_ids_for, stream_text
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.tokenizer.tokenizer import Tokenizer

TEXT = "静夜思 床前明月光，疑是地上霜。举头望明月，低头思故乡。To be, or not to be: that is the question. " * 3


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train(TEXT, vocab_size=320)


def scripted_model(vocab_size: int, script: list[int], seed: int = 0) -> GPT:
    """A GPT whose greedy next token after token script[i] is script[i + 1] (script ids must be distinct
    except the last). The blocks are made identities (o_proj = down_proj = 0), so the final hidden state is
    rmsnorm(embedding of the current token); the untied head row of each successor points along it."""
    torch.manual_seed(seed)
    m = GPT(ModelConfig.preset("tiny", vocab_size=vocab_size, tie_embeddings=False, max_seq_len=128)).eval()
    with torch.no_grad():
        for layer in m.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        m.lm_head.weight.zero_()
        emb = m.embed_tokens.weight
        for a, b in zip(script, script[1:]):
            h = emb[a] / emb[a].pow(2).mean().sqrt()  # what the final RMSNorm produces
            m.lm_head.weight[b] += 5 * h / h.norm()
    return m


def test_utf8_decoder_never_splits_a_character(tok):
    text = "床前明月光，疑是地上霜。"
    byte_ids = list(text.encode("utf-8"))  # ids 0..255 are the single bytes: every character spans 3 tokens
    for ids in (byte_ids, tok.encode(text)):
        dec = Utf8Decoder(tok)
        pieces = [dec.feed(i) for i in ids] + [dec.flush()]
        assert "".join(pieces) == text
        assert all("\ufffd" not in p for p in pieces)
        if ids is byte_ids:
            assert pieces[:3] == ["", "", "床"]  # nothing until the character is complete
    # Truncated at the end: the partial character becomes U+FFFD only at flush.
    dec = Utf8Decoder(tok)
    assert [dec.feed(i) for i in "月".encode("utf-8")[:2]] == ["", ""]
    assert dec.flush() == "\ufffd"


def test_stop_matcher_holds_back_and_cuts_across_pieces():
    m = StopMatcher(["STOP", "\n\n"])
    out = [m.feed(x) for x in ["Hello S", "T", "O", "P!"]]
    assert out == ["Hello ", "", "", ""] and m.stopped == "STOP"
    m = StopMatcher(["STOP"])
    out = [m.feed(x) for x in ["a ST", "ART"]] + [m.flush()]
    assert "".join(out) == "a START" and out[0] == "a " and m.stopped is None  # released once it can't match
    m = StopMatcher(["ab", "b"])
    assert m.feed("xab") == "x" and m.stopped == "ab"  # earliest match wins
    m = StopMatcher(["。举"])
    assert m.feed("霜") == "霜" and m.feed("。") == "" and m.feed("举头") == "" and m.stopped == "。举"


def test_stop_string_spanning_tokens_ends_the_sample(tok):
    # x y 世(3 byte tokens) 界(3 byte tokens) ! Z <|end|> : all ids distinct.
    script = [ord("x"), ord("y"), *"世界".encode("utf-8"), ord("!"), ord("Z"), tok.end_id]
    m = scripted_model(tok.vocab_size, script)
    eng = Engine(m, eos_token_ids=stop_ids_for(tok))
    greedy = SamplingParams(temperature=0, max_new_tokens=20)
    out = generate_text(eng, tok, [script[0]], greedy)
    assert out.text == "y世界!Z" and out.completions[0].finish_reason == "stop"
    assert out.completions[0].token_ids == script[1:]  # the stop token id stays in the ids, not the text
    # "界!" spans four tokens (three bytes of 界 and "!"): the text before it, and generation ends at "!".
    out = generate_text(eng, tok, [script[0]], greedy.replace(stop=("界!",)))
    assert out.text == "y世" and out.completions[0].finish_reason == "stop" and out.completions[0].stop == "界!"
    assert out.completions[0].token_ids == script[1:-2]  # nothing generated after the token completing it
    # Streaming: deltas never contain part of a character or of a possible stop string.
    deltas = list(stream_text(eng, tok, [script[0]], greedy.replace(stop=("世界?",))))
    # "世" and "世界" could begin the stop string, so they are held until "!" shows they don't.
    assert [d.text for d in deltas] == ["y", "世界!", "Z", ""]
    assert deltas[-1].finish_reason == "stop" and deltas[-1].stop == tok.end_id


def test_streaming_chinese_with_a_real_model_is_utf8_safe(tok):
    torch.manual_seed(0)
    m = GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size)).eval()
    params = SamplingParams(temperature=1.0, seed=0, max_new_tokens=40, n=2, ignore_eos=True)
    deltas = list(stream_text(m, tok, "静夜思", params))
    for j in range(2):
        text = "".join(d.text for d in deltas if d.sample_index == j)
        ids = [t for d in deltas if d.sample_index == j for t in d.token_ids]
        assert len(ids) == 40
        assert text == tok.decode_bytes(ids).decode("utf-8", errors="replace")
    # Each delta is whole characters: it round-trips through UTF-8 without replacement characters unless the
    # model really produced invalid bytes (then the full decode has them too, at the same places).
    out = generate_text(m, tok, "静夜思", params)
    assert [c.text for c in out.completions] == [
        "".join(d.text for d in deltas if d.sample_index == j) for j in range(2)]
