"""SFT: packing equals separate rows, the batch source resumes exactly, and the loss falls on a tiny set."""

import json

import numpy as np
import pytest
import torch

from llmlab.chat.data import Conversation
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.runs import load_run, save_run_model
from llmlab.train.loop import TrainConfig
from llmlab.train.sft import ConversationBatches, SFTConfig, render_examples, run, sft_loss


def _convs(n=24):
    out = []
    for i in range(n):
        a, b = i % 7, (3 * i) % 5
        out.append(Conversation([{"role": "user", "content": f"What is {a} plus {b}?"},
                                 {"role": "assistant", "content": str(a + b)}], {"kind": "arithmetic", "answer": str(a + b)}))
    return out


@pytest.fixture
def tiny_model(small_tok):
    torch.manual_seed(0)
    return GPT(ModelConfig.preset("tiny", vocab_size=small_tok.vocab_size, max_seq_len=64))


def test_packed_rows_compute_what_separate_rows_do(small_tok, tiny_model):
    ex, skipped = render_examples(_convs(6), small_tok, seq_len=64)
    assert skipped == 0
    src = ConversationBatches(ex, batch_size=1, seq_len=64, pad_id=small_tok.pad_id, packing=True, seed=0)
    batch = src.next_batch()
    docs = batch["doc_ids"][0]
    assert docs.max() >= 1  # several conversations share the row
    assert int(batch["num_tokens"]) == int((docs >= 0).sum())
    tiny_model.eval()
    from llmlab.model.gpt import document_causal_mask

    with torch.no_grad():
        packed = tiny_model(batch["input_ids"], positions=batch["positions"],
                            attn_mask=document_causal_mask(batch["doc_ids"]))[0]
        for d in range(int(docs.max()) + 1):
            sel = (docs == d).nonzero().flatten()
            alone = tiny_model(batch["input_ids"][:, sel])[0]
            torch.testing.assert_close(packed[sel], alone, atol=1e-4, rtol=1e-4)
    # Targets are exactly the assistant tokens of the conversations (shifted by one).
    first = ex[int(src._perm(0)[0])]
    want = np.where(first[1][1:] == 1, first[0][1:], -1)
    assert batch["targets"][0, : len(want)].tolist() == want.tolist()


def test_padding_mode_and_too_long_skipped(small_tok):
    long = Conversation([{"role": "user", "content": "x " * 200}, {"role": "assistant", "content": "y"}])
    ex, skipped = render_examples(_convs(4) + [long], small_tok, seq_len=64)
    assert (len(ex), skipped) == (4, 1)
    src = ConversationBatches(ex, batch_size=3, seq_len=64, pad_id=small_tok.pad_id, packing=False)
    b = src.next_batch()
    assert "doc_ids" not in b and b["input_ids"].shape[0] == 3
    assert (b["targets"][b["input_ids"] == small_tok.pad_id] == -1).all()


def test_batch_source_resumes_exactly(small_tok):
    ex, _ = render_examples(_convs(10), small_tok, seq_len=64)
    a = ConversationBatches(ex, 2, 64, small_tok.pad_id, seed=3)
    for _ in range(7):  # crosses an epoch boundary
        a.next_batch()
    b = ConversationBatches(ex, 2, 64, small_tok.pad_id, seed=3)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for _ in range(3):
        x, y = a.next_batch(), b.next_batch()
        assert all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.slow
@pytest.mark.parametrize("packing", [True, False])
def test_sft_loss_falls_and_run_folder_is_complete(tmp_path, small_tok, tiny_model, packing):
    base = tmp_path / "base"
    save_run_model(base, tiny_model, small_tok)
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(c.to_json()) + "\n" for c in _convs(40)))
    out = tmp_path / "sft"
    scfg = SFTConfig(model=str(base), data=str(data), out=str(out), packing=packing, eval_samples=0)
    tcfg = TrainConfig(lr=3e-3, max_steps=40, batch_size=4, seq_len=64, warmup_steps=2, schedule="constant",
                       eval_every=20, device="cpu")
    result = run(scfg, tcfg, progress=False)
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_loss"] < 3.0 and summary["train_conversations"] == 38
    model, tok = load_run(out)  # weights + the base run's tokenizer
    assert tok.vocab_size == small_tok.vocab_size


def test_sft_loss_ignores_non_assistant_tokens(small_tok, tiny_model):
    ex, _ = render_examples(_convs(2), small_tok, seq_len=64)
    src = ConversationBatches(ex, 2, 64, small_tok.pad_id, packing=False)
    batch = src.next_batch()
    loss, m = sft_loss(tiny_model, batch)
    assert int(m["target_tokens"]) == sum(int(e[1][1:].sum()) for e in ex)
    # The loss is the mean over those targets only: recompute it by hand from the logits.
    logits = tiny_model(batch["input_ids"])
    logp = torch.log_softmax(logits.float(), -1)
    t = batch["targets"]
    sel = t >= 0
    manual = -logp[sel].gather(1, t[sel].unsqueeze(1)).mean()
    torch.testing.assert_close(loss, manual)
