"""The reward model's batching: length buckets and shared-prompt rows score what plain batches score, faster."""

import json

import pytest
import torch
from rl_fixtures import make_run, write_jsonl

from llmlab.chat.pref_data import PairBatches, encode_pairs, pair_batch, read_pairs
from llmlab.model.heads import ScalarHeadModel
from llmlab.model.sequences import gather_last
from llmlab.runs import load_run
from llmlab.train.rm import LengthBucketedPairs, pair_accuracy, rm_loss, shared_prompt_batch


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
    plain = PairBatches(enc, 4, tok.pad_id, seed=1)
    bucketed = LengthBucketedPairs(enc, 4, tok.pad_id, seed=1, shared_prompt=False)
    for _ in range(2):  # two epochs
        seen, pad_plain, pad_bucketed = [], 0, 0
        for _ in range(10):
            a, b = plain.next_batch(), bucketed.next_batch()
            seen += b["index"].tolist()
            pad_plain += a["input_ids"].numel()
            pad_bucketed += b["input_ids"].numel()
        assert sorted(seen) == list(range(40))
        assert pad_bucketed < 0.85 * pad_plain
    one = LengthBucketedPairs(enc, 4, tok.pad_id, seed=1, bucket_batches=1, shared_prompt=False)
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
    from llmlab.model.sequences import sequence_logprobs
    from llmlab.runs import load_reward_model, save_reward_model

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

    from rl_fixtures import toy_pairs

    from llmlab.runs import load_reward_model
    from llmlab.train.loop import TrainConfig
    from llmlab.train.rm import RMConfig, run

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    cfg = TrainConfig(lr=3e-3, max_steps=25, batch_size=8, warmup_steps=1, schedule="constant", seq_len=64,
                      device="cpu", weight_decay=0.0)
    summary = run(RMConfig(model=base, data=data, val=val, out=tmp_path / "rm", lm_coef=0.5, logprob_coef=1.0), cfg,
                  progress=False).summary
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

    from llmlab.model.heads import score_sequences
    from llmlab.model.sequences import pad_sequences, sequence_logprobs

    rm, tok = _rm(tmp_path)
    rm.logprob_coef = 1.0
    prompts = [tok.encode("What is 3 plus 4?"), tok.encode("zq xv Hamlet? 12 qz vx jj plus kq")]
    answer = tok.encode(" 7. Good answer.")
    seqs = [p + answer for p in prompts]
    ids, mask, last = pad_sequences(seqs, [len(p) for p in prompts], tok.pad_id)
    _, whole, _ = pad_sequences(seqs, [1, 1], tok.pad_id)  # every token after the first
    with torch.no_grad():
        head = gather_last(rm.head(rm.backbone.trunk(ids)).squeeze(-1), last)
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


def _toy_run(tmp_path, n_train=16):
    from rl_fixtures import toy_pairs

    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(n_train))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(n_train + 8)[n_train:])
    return base, data, val


def _cfg(steps, **kw):
    from llmlab.train.loop import TrainConfig

    return TrainConfig(lr=3e-3, max_steps=steps, batch_size=8, warmup_steps=1, schedule="constant", seq_len=64,
                       device="cpu", weight_decay=0.0, **kw)


def test_train_layers_freezes_the_embedding_and_lower_blocks(tmp_path):
    """--train-layers 1 on a 2-layer model: block 0 and the (tied) embedding stay as SFT left them, block 1,
    the final norm and the head train, and the toy preference is still learned."""
    from llmlab.runs import load_reward_model
    from llmlab.train.rm import RMConfig, run

    base, data, val = _toy_run(tmp_path)
    before, _ = load_run(base)
    summary = run(RMConfig(model=base, data=data, val=val, out=tmp_path / "rm", train_layers=1), _cfg(25),
                  progress=False).summary
    assert summary["val_pair_accuracy"] == 1.0
    after = load_reward_model(tmp_path / "rm")[0].backbone.state_dict()
    for name, w in before.state_dict().items():
        frozen = name.startswith(("embed_tokens", "lm_head", "layers.0."))
        assert torch.equal(after[name], w) == frozen, name


def test_backbone_lr_scale_sets_the_groups_learning_rates(tmp_path):
    """The head keeps --lr, the backbone gets lr x scale; weight decay lands where the default groups put it
    (matrices, not the embedding, norms or biases); --train-layers 0 leaves the head alone to train."""
    from llmlab.errors import LlmlabError
    from llmlab.train.rm import rm_param_groups

    rm, _ = _rm(tmp_path)
    groups = rm_param_groups(rm, 1e-3, weight_decay=0.1, backbone_lr_scale=0.1)
    head = [g for g in groups if g["lr"] == 1e-3]
    backbone = [g for g in groups if g["lr"] == pytest.approx(1e-4)]
    assert len(head) + len(backbone) == len(groups)
    assert {id(p) for g in head for p in g["params"]} == {id(p) for p in rm.head.parameters()}
    n_backbone = len({id(p) for p in rm.backbone.parameters()})  # the tied embedding/head counted once
    assert sum(len(g["params"]) for g in backbone) == n_backbone
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.1 for p in g["params"]}
    assert id(rm.head.weight) in decayed and id(rm.backbone.layers[0].self_attn.q_proj.weight) in decayed
    assert id(rm.backbone.embed_tokens.weight) not in decayed and id(rm.head.bias) not in decayed
    only_head = rm_param_groups(rm, 1e-3, train_layers=0)  # a linear probe: the head alone
    assert {id(p) for g in only_head for p in g["params"]} == {id(p) for p in rm.head.parameters()}
    assert not any(p.requires_grad for p in rm.backbone.parameters())
    with pytest.raises(LlmlabError, match="--train-layers 3: the model has 2 layers"):
        rm_param_groups(rm, 1e-3, train_layers=3)


def test_dev_split_keeps_the_best_weights(tmp_path, monkeypatch):
    """--dev-frac: dev pairs are whole prompts kept out of training; the run ends with the weights that scored
    best on them, even when training goes on past that point."""
    import llmlab.train.rm as rm_mod
    from llmlab.runs import load_reward_model

    base, data, val = _toy_run(tmp_path, n_train=20)
    _, tok = load_run(base)
    enc = encode_pairs(read_pairs(data), tok, 64)[0]
    train, dev = rm_mod.split_dev(enc, 0.25, seed=0)
    assert len(dev) == 5 and len(train) == 15
    assert not {tuple(e.chosen[: e.chosen_start]) for e in dev} & {tuple(e.chosen[: e.chosen_start]) for e in train}
    # A dev score that peaks at the second check (step 4): those are the weights that must be saved.
    scores = iter([0.2, 0.9, 0.5, 0.4, 0.6])
    saved = {}
    real = rm_mod.pair_accuracy

    def fake(model, enc_, pad_id, batch_size=32):
        res = real(model, enc_, pad_id, batch_size)
        if len(enc_) == len(dev):
            res["pair_accuracy"] = next(scores)
            saved[len(saved)] = {k: v.clone() for k, v in model.state_dict().items()}
        return res

    monkeypatch.setattr(rm_mod, "pair_accuracy", fake)
    summary = rm_mod.run(rm_mod.RMConfig(model=base, data=data, val=val, out=tmp_path / "rm", dev_frac=0.25),
                         _cfg(8, eval_every=2), progress=False).summary
    assert summary["best_dev_pair_accuracy"] == 0.9 and summary["best_step"] == 4
    assert json.loads((tmp_path / "rm" / "config.json").read_text())["dev_pairs"] == 5
    got = load_reward_model(tmp_path / "rm")[0]
    torch.testing.assert_close(got.head.weight, saved[1]["head.weight"])
    assert not torch.equal(saved[1]["head.weight"], saved[4]["head.weight"])  # training did move on


def test_rm_cli_rejects_bad_options_in_one_line(tmp_path, capsys):
    from llmlab.cli import main

    base, data, val = _toy_run(tmp_path)
    common = ["rm", "--model", str(base), "--data", str(data), "--out", str(tmp_path / "o"), "--no-progress",
              "--max-steps", "2"]
    for extra, msg in ((["--train-layers", "5"], "--train-layers 5: the model has 2 layers"),
                       (["--head-layers", "3"], "head_layers=3: the model has 2 layers"),
                       (["--dev-frac", "0.2"], "--dev-frac needs --eval-every"),
                       (["--dev-frac", "1.5"], "--dev-frac in [0, 1)")):
        assert main(common + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("llmlab: error: ") and msg in err and "Traceback" not in err
    for bad in ("none", "0"):  # argparse's own usage error
        with pytest.raises(SystemExit) as exit_info:
            main(common + ["--head-layers", bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --head-layers: '{bad}' is not a positive number of layers or 'all'" in err


def test_head_layers_reads_the_lower_layers_states_too(tmp_path):
    """head_layers=2: the head reads [final normed state, RMS-normalised stream after the block below], in
    plain and shared-prompt rows alike; the folder is v3 and loads back to the same scores."""
    import torch.nn.functional as F

    from llmlab.errors import LlmlabError
    from llmlab.runs import load_reward_model, save_reward_model

    backbone, tok = load_run(make_run(tmp_path / "base"))
    torch.manual_seed(0)
    rm = ScalarHeadModel(backbone, head_layers=2).eval()
    assert rm.head.in_features == 2 * backbone.config.d_model
    with torch.no_grad():
        rm.head.weight.normal_()
    enc = _pairs(tmp_path, tok, n=6)
    plain, shared = pair_batch(enc, tok.pad_id), shared_prompt_batch(enc, tok.pad_id)
    with torch.no_grad():  # the walk written out: embedding, block 0 (kept), block 1, final norm
        ids = plain["input_ids"]
        pos = torch.arange(ids.shape[1])
        cos, sin = backbone.rope_cos[pos][None, None], backbone.rope_sin[pos][None, None]
        x0 = backbone.layers[0](backbone.embed_tokens(ids), cos, sin, None, None)
        top = backbone.norm(backbone.layers[1](x0, cos, sin, None, None))
        want = rm.head(torch.cat([top, F.rms_norm(x0, (x0.shape[-1],), eps=backbone.config.norm_eps)], -1))
        r = gather_last(rm(ids), plain["last"])
        s = rm(shared["input_ids"], shared["positions"], shared["attn_mask"])
    torch.testing.assert_close(r, gather_last(want.squeeze(-1), plain["last"]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gather_last(s, shared["last_chosen"]), r[:6], atol=1e-4, rtol=1e-4)
    save_reward_model(tmp_path / "rm", rm, tok)
    assert json.loads((tmp_path / "rm" / "reward_head.json").read_text())["version"] == 3
    again, _ = load_reward_model(tmp_path / "rm")
    assert again.head_layers == 2
    with torch.no_grad():
        torch.testing.assert_close(gather_last(again(ids), plain["last"]), r)
    with pytest.raises(LlmlabError, match="head_layers=3: the model has 2 layers"):
        ScalarHeadModel(backbone, head_layers=3)


def test_train_with_head_layers_and_frozen_lower_layers(tmp_path):
    from llmlab.cli import main

    base, data, val = _toy_run(tmp_path)
    assert main(["rm", "--model", str(base), "--data", str(data), "--val", str(val), "--out", str(tmp_path / "rm"),
                 "--no-progress", "--max-steps", "25", "--lr", "3e-3", "--batch-size", "8", "--warmup-steps", "1",
                 "--head-layers", "2", "--train-layers", "1", "--backbone-lr-scale", "0.5"]) == 0
    summary = json.loads((tmp_path / "rm" / "summary.json").read_text())
    assert summary["val_pair_accuracy"] == 1.0
    cfg = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert (cfg["head_layers"], cfg["train_layers"], cfg["backbone_lr_scale"]) == (2, 1, 0.5)


def test_head_layers_all_reads_every_layer(tmp_path):
    from llmlab.cli import main
    from llmlab.runs import load_reward_model

    base, data, val = _toy_run(tmp_path)
    assert main(["rm", "--model", str(base), "--data", str(data), "--out", str(tmp_path / "rm"), "--no-progress",
                 "--max-steps", "2", "--head-layers", "all"]) == 0
    rm, _ = load_reward_model(tmp_path / "rm")
    assert rm.head_layers == 2 and rm.head.in_features == 2 * rm.config.d_model  # the toy model's 2 layers


def test_resume_with_another_dev_frac_is_a_clear_error(tmp_path, capsys):
    """A checkpoint keeps the early-stopping state only when --dev-frac was on: resuming with the option
    switched is an error naming it, not a KeyError (nor training on the dev pairs); the same options resume."""
    from llmlab.cli import main

    base, data, val = _toy_run(tmp_path)
    for first, again in (([], ["--dev-frac", "0.25", "--eval-every", "2"]),
                         (["--dev-frac", "0.25", "--eval-every", "2"], [])):
        out = tmp_path / f"rm{len(first)}"
        common = ["rm", "--model", str(base), "--data", str(data), "--val", str(val), "--out", str(out),
                  "--no-progress", "--save-every", "2"]
        assert main(common + first + ["--max-steps", "2"]) == 0
        capsys.readouterr()
        assert main(common + again + ["--max-steps", "4", "--resume"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("llmlab: error: ") and "resume with the options the run started with" in err
        assert "Traceback" not in err
        assert main(common + first + ["--max-steps", "4", "--resume"]) == 0
