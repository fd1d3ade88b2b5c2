"""Log-likelihood scoring against a plain forward pass: shared contexts, padding, truncation, the chat form.

    .venv/bin/pytest tests/eval/test_loglik.py -q
"""

import pytest
import torch

from llmlab.eval.backends import LLRequest, LocalBackend
from llmlab.eval.loglik import ItemError, score_continuations


def direct(model, ctx, cont):
    """log p(cont | ctx) and greedy-ness from one forward of the whole row, token by token."""
    with torch.no_grad():
        row = torch.tensor([ctx + cont])
        lp = torch.log_softmax(model(row[:, :-1]).double(), -1)[0]  # (T-1, V): position t predicts t+1
    toks = [float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)]
    greedy = all(int(lp[len(ctx) - 1 + j].argmax()) == t for j, t in enumerate(cont))
    return toks, greedy


def test_equals_plain_forward_with_shared_contexts(tiny):
    model, tok = tiny
    a, b = [tok.bos_id] + tok.encode("To be, or not"), [tok.bos_id] + tok.encode("The king")
    pairs = [(a, tok.encode(" to be")), (a, tok.encode(" the question")), (a, tok.encode(",")),  # one context
             (b, tok.encode(" is here.")), (b, tok.encode(" are")), ([tok.bos_id], tok.encode("The lords are gone."))]
    for batch_rows in (1, 2, 64):  # contexts alone, split across batches, all in one
        out = score_continuations(model, pairs, batch_rows=batch_rows)
        for (ctx, cont), s in zip(pairs, out):
            toks, greedy = direct(model, ctx, cont)
            assert s.token_logprobs == pytest.approx(toks, abs=2e-4)
            assert s.logprob == pytest.approx(sum(toks), abs=5e-4)
            assert s.greedy == greedy and s.truncated == 0


def test_greedy_continuation_is_flagged(tiny):
    model, tok = tiny
    ctx = [tok.bos_id] + tok.encode("What is")
    with torch.no_grad():  # the model's own greedy 3 tokens
        ids = list(ctx)
        for _ in range(3):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    (s,) = score_continuations(model, [(ctx, ids[len(ctx):])])
    assert s.greedy


def test_long_context_is_cut_from_the_left_and_too_long_continuations_fail_alone(tiny):
    model, tok = tiny
    T = model.config.max_seq_len
    ctx = [tok.bos_id] + tok.encode("To be, or not to be, that is the question. " * 10)
    cont = tok.encode(" The king is here.")
    assert len(ctx) + len(cont) - 1 > T
    good, bad, empty = score_continuations(model, [(ctx, cont), (ctx, list(range(5, 5 + T + 1))), (ctx, [])])
    keep = T + 1 - len(cont)
    toks, _ = direct(model, ctx[-keep:], cont)
    assert good.truncated == len(ctx) - keep and good.logprob == pytest.approx(sum(toks), abs=5e-4)
    assert isinstance(bad, ItemError) and "does not fit" in str(bad)
    assert isinstance(empty, ItemError)


def test_text_requests_tokenize_the_continuation_in_running_text(tiny):
    model, tok = tiny
    be = LocalBackend(model, tok)
    ctx, cont = be.encode_pair(LLRequest("Question: Who says this?\nAnswer: ", "Hamlet"))
    # The context's trailing space moved into the continuation: the tokens of " Hamlet" as in the running text.
    assert ctx == [tok.bos_id] + tok.encode("Question: Who says this?\nAnswer:")
    assert ctx[1:] + cont == tok.encode("Question: Who says this?\nAnswer: Hamlet")
    (s,) = be.loglikelihood([LLRequest("Question: Who says this?\nAnswer: ", "Hamlet")])
    assert s.logprob == pytest.approx(sum(direct(model, ctx, cont)[0]), abs=5e-4)
    ctx, cont = be.encode_pair(LLRequest("", "The king is here."))  # empty context: scored after <|bos|>
    assert ctx == [tok.bos_id] and cont == tok.encode("The king is here.")


def test_chat_requests_score_the_reply_and_its_end(tiny):
    from llmlab.chat.template import render, render_prompt

    model, tok = tiny
    be = LocalBackend(model, tok)
    msgs = [{"role": "user", "content": "What is 12 + 7?"}]
    ctx, cont = be.encode_pair(LLRequest(msgs, "19"))
    assert ctx == render_prompt(msgs, tok)
    assert ctx + cont == render(msgs + [{"role": "assistant", "content": "19"}], tok)[0]
    assert cont[-1] == tok.end_id
    (s,) = be.loglikelihood([LLRequest(msgs, "19")])
    assert s.logprob == pytest.approx(sum(direct(model, ctx, cont)[0]), abs=5e-4)
