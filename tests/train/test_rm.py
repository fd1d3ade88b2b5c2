"""The reward model's batching: length buckets and shared-prompt rows score what plain batches score, faster."""

import torch

from llmlab.model.checkpoint import load_run
from llmlab.train.pref_data import PairBatches, encode_pairs, pair_batch, read_pairs
from llmlab.train.rl_common import ScalarHeadModel, gather_last
from llmlab.train.rm import LengthBucketedPairs, pair_accuracy, rm_loss, shared_prompt_batch
from rl_fixtures import make_run, write_jsonl


def _pairs(tmp_path, tok, n=40):
    """Pairs whose prompts and answers differ in length (so buckets and padding matter)."""
    rows = [{"prompt": f"What is {i} plus {i}?" + " Hamlet." * (i % 9),
             "chosen": f"{2 * i}." + " Good answer." * (i % 3),
             "rejected": f"{2 * i + 1}." + " Bad answer." * (i % 4)} for i in range(n)]
    enc, dropped = encode_pairs(read_pairs(write_jsonl(tmp_path / "p.jsonl", rows)), tok, 64)
    assert dropped == 0
    return enc


def _rm(tmp_path):
    backbone, tok = load_run(make_run(tmp_path / "base"))
    torch.manual_seed(0)
    rm = ScalarHeadModel(backbone).eval()
    with torch.no_grad():
        rm.head.weight.normal_()  # scores that differ between answers
    return rm, tok


def test_shared_prompt_rows_score_like_separate_rows(tmp_path):
    rm, tok = _rm(tmp_path)
    enc = _pairs(tmp_path, tok, n=12)
    with torch.no_grad():
        plain = pair_batch(enc, tok.pad_id)
        r = gather_last(rm(plain["input_ids"]), plain["last"])
        shared = shared_prompt_batch(enc, tok.pad_id)
        s = rm(shared["input_ids"], shared["positions"], shared["attn_mask"])
    torch.testing.assert_close(gather_last(s, shared["last_chosen"]), r[:12], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gather_last(s, shared["last_rejected"]), r[12:], atol=1e-4, rtol=1e-4)
    assert shared["num_tokens"] < plain["num_tokens"]  # the prompt is counted once
    with torch.no_grad():
        assert torch.allclose(rm_loss(rm, shared)[0], rm_loss(rm, plain)[0], atol=1e-5)


def test_length_buckets_visit_every_pair_once_and_pad_less(tmp_path):
    _, tok = _rm(tmp_path)
    enc = _pairs(tmp_path, tok)
    plain, bucketed = PairBatches(enc, 4, tok.pad_id, seed=1), LengthBucketedPairs(enc, 4, tok.pad_id, seed=1)
    for _ in range(2):  # two epochs
        seen, pad_plain, pad_bucketed = [], 0, 0
        for _ in range(10):
            a, b = plain.next_batch(), bucketed.next_batch()
            seen += b["index"].tolist()
            pad_plain += a["input_ids"].numel()
            pad_bucketed += b["input_ids"].numel()
        assert sorted(seen) == list(range(40))
        assert pad_bucketed < 0.85 * pad_plain
    one = LengthBucketedPairs(enc, 4, tok.pad_id, seed=1, bucket_batches=1)
    again = PairBatches(enc, 4, tok.pad_id, seed=1)
    assert all(torch.equal(one.next_batch()["index"], again.next_batch()["index"]) for _ in range(12))


def test_length_buckets_resume_exactly(tmp_path):
    _, tok = _rm(tmp_path)
    enc = _pairs(tmp_path, tok, n=30)  # 7 batches of 4 and a remainder of 2, never drawn
    a = LengthBucketedPairs(enc, 4, tok.pad_id, seed=3, bucket_batches=4, shared_prompt=True)
    for _ in range(9):
        a.next_batch()
    b = LengthBucketedPairs(enc, 4, tok.pad_id, seed=3, bucket_batches=4, shared_prompt=True)
    b.load_state_dict(a.state_dict())
    for _ in range(8):
        x, y = a.next_batch(), b.next_batch()
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["attn_mask"], y["attn_mask"])
        assert len(set(x["index"].tolist())) == 4


def test_pair_accuracy_does_not_depend_on_order(tmp_path):
    rm, tok = _rm(tmp_path)
    enc = _pairs(tmp_path, tok)
    a = pair_accuracy(rm, enc, tok.pad_id, batch_size=8)
    b = pair_accuracy(rm, enc[::-1], tok.pad_id, batch_size=8)
    assert a["pair_accuracy"] == b["pair_accuracy"] and abs(a["bt_loss"] - b["bt_loss"]) < 1e-5


def test_lm_term_is_the_chosen_answers_next_token_loss(tmp_path):
    """rm_loss(lm_coef=c) = Bradley-Terry + c * the chosen answers' mean next-token loss, in both layouts."""
    rm, tok = _rm(tmp_path)
    enc = _pairs(tmp_path, tok, n=6)
    with torch.no_grad():  # the chosen rows alone, their answers scored by the GPT's own loss
        T = max(len(e.chosen) for e in enc)
        ids = torch.full((len(enc), T), tok.pad_id)
        tgt = torch.full((len(enc), T), -1)
        for b, e in enumerate(enc):
            ids[b, : len(e.chosen)] = torch.tensor(e.chosen)
            tgt[b, e.chosen_start - 1 : len(e.chosen) - 1] = torch.tensor(e.chosen[e.chosen_start:])
        want = rm.backbone(ids, targets=tgt)
        for batch in (pair_batch(enc, tok.pad_id), shared_prompt_batch(enc, tok.pad_id)):
            bt, _ = rm_loss(rm, batch)
            loss, metrics = rm_loss(rm, batch, lm_coef=0.5)
            torch.testing.assert_close(metrics["lm_loss"], want, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(loss, bt + 0.5 * want, atol=1e-4, rtol=1e-4)


def test_logprob_term_adds_the_answers_log_likelihood(tmp_path):
    """With logprob_coef, a pair's margin gains coef * (log p(chosen | prompt) - log p(rejected | prompt)), the
    same in separate and shared-prompt rows; the coefficient survives saving and loading."""
    from llmlab.train.rl_common import load_reward_model, save_reward_model, sequence_logprobs

    rm, tok = _rm(tmp_path)
    enc = _pairs(tmp_path, tok, n=8)
    plain, shared = pair_batch(enc, tok.pad_id), shared_prompt_batch(enc, tok.pad_id)
    with torch.no_grad():
        head = gather_last(rm(plain["input_ids"]), plain["last"])
        lp = sequence_logprobs(rm.backbone, plain["input_ids"], plain["mask"])  # answers only
        rm.logprob_coef = 0.5
        r = gather_last(rm(plain["input_ids"]), plain["last"])
        s = rm(shared["input_ids"], shared["positions"], shared["attn_mask"])
    want = (head[:8] - head[8:]) + 0.5 * (lp[:8] - lp[8:])
    torch.testing.assert_close(r[:8] - r[8:], want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gather_last(s, shared["last_chosen"]) - gather_last(s, shared["last_rejected"]), want,
                               atol=1e-4, rtol=1e-4)
    save_reward_model(tmp_path / "rm", rm, tok)
    again, _ = load_reward_model(tmp_path / "rm")
    assert again.logprob_coef == 0.5
    with torch.no_grad():
        torch.testing.assert_close(gather_last(again(plain["input_ids"]), plain["last"]), r)


def test_train_with_logprob_and_lm_terms(tmp_path):
    """The options train end to end: the toy preference is learned, the lm term is logged, the folder is v2."""
    import json
    import math

    from llmlab.train.loop import TrainConfig
    from llmlab.train.rl_common import load_reward_model
    from llmlab.train.rm import train_reward_model
    from rl_fixtures import toy_pairs

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    cfg = TrainConfig(lr=3e-3, max_steps=25, batch_size=8, warmup_steps=1, schedule="constant", seq_len=64,
                      device="cpu", weight_decay=0.0)
    summary = train_reward_model(base, data, tmp_path / "rm", cfg, val_path=val, lm_coef=0.5, logprob_coef=1.0,
                                 progress=False)
    assert summary["val_pair_accuracy"] == 1.0 and summary["val_loss"] < math.log(2)
    hist = [json.loads(l) for l in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    assert all("lm_loss" in h for h in hist if "loss" in h)
    assert json.loads((tmp_path / "rm" / "reward_head.json").read_text())["version"] == 2
    assert load_reward_model(tmp_path / "rm")[0].logprob_coef == 1.0


def test_answer_start_leaves_the_prompts_log_likelihood_out(tmp_path):
    """With ``answer_start`` a log-likelihood reward model scores head + coef * log p(answer | prompt): the
    same answer after a likely and an unlikely prompt differs only by what the head and the answer's tokens
    say, not by the prompts' own log-likelihoods (which differ by many nats here)."""
    import pytest

    from llmlab.train.pref_data import pad_sequences
    from llmlab.train.rl_common import hidden_states, score_sequences, sequence_logprobs

    rm, tok = _rm(tmp_path)
    rm.logprob_coef = 1.0
    prompts = [tok.encode("What is 3 plus 4?"), tok.encode("zq xv Hamlet? 12 qz vx jj plus kq")]
    answer = tok.encode(" 7. Good answer.")
    seqs = [p + answer for p in prompts]
    ids, mask, last = pad_sequences(seqs, [len(p) for p in prompts], tok.pad_id)
    _, whole, _ = pad_sequences(seqs, [1, 1], tok.pad_id)  # every token after the first
    with torch.no_grad():
        head = gather_last(rm.head(hidden_states(rm.backbone, ids)).squeeze(-1), last)
        answer_lp = sequence_logprobs(rm.backbone, ids, mask)
        prompt_lp = sequence_logprobs(rm.backbone, ids, whole) - answer_lp
    assert abs(prompt_lp[0] - prompt_lp[1]) > 5.0  # the two prompts' likelihoods really differ
    got = score_sequences(rm, seqs, tok.pad_id, answer_starts=[len(p) for p in prompts])
    torch.testing.assert_close(got, head + answer_lp, atol=1e-4, rtol=1e-4)
    # Without answer starts the score is the conversation's: it carries log p(prompt).
    torch.testing.assert_close(score_sequences(rm, seqs, tok.pad_id), head + answer_lp + prompt_lp,
                               atol=1e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="1 answer starts for 2 sequences"):
        score_sequences(rm, seqs, tok.pad_id, answer_starts=[3])
