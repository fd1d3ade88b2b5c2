"""The reward model: the SFT transformer with a scalar head, trained on preference pairs (Bradley-Terry).

    llmlab rm --model runs/sft --data data/pref/pairs_train.jsonl --val data/pref/pairs_val.jsonl --out runs/rm

    from llmlab.train.rm import train_reward_model
    summary = train_reward_model("runs/sft", "pairs_train.jsonl", "runs/rm", TrainConfig(...), val_path=...)

People compare two answers to the same prompt; the model learns a score r(prompt, answer) -- the head's
output at the last token -- such that P(chosen beats rejected) = sigmoid(r_c - r_r), by minimising
-log sigmoid(r_c - r_r). Each step scores B pairs as 2B rows in one forward pass. The run reports pairwise
accuracy (share of held-out pairs with r_c > r_r) as ``val_pair_accuracy`` in summary.json. The folder holds
the backbone as a normal run plus ``reward_head.safetensors`` (see rl_common.py); PPO and the win-rate
evaluation load it with ``load_reward_model``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llmlab.train.losses import bradley_terry_loss
from llmlab.train.pref_data import PairBatches, encode_pairs, pair_batch, read_pairs
from llmlab.train.rl_common import ScalarHeadModel, gather_last, save_reward_model


def rm_loss(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """Bradley-Terry loss on one batch of pairs (chosen rows first, rejected rows second)."""
    r = gather_last(model(batch["input_ids"]), batch["last"])  # (2B,)
    n = r.shape[0] // 2
    loss, acc = bradley_terry_loss(r[:n], r[n:])
    return loss, {"pair_accuracy": acc, "reward_margin": (r[:n] - r[n:]).detach().mean(),
                  "reward_mean": r.detach().mean(), "reward_std": r.detach().std()}


@torch.no_grad()
def pair_accuracy(rm: ScalarHeadModel, enc, pad_id: int, batch_size: int = 32) -> dict:
    """Pairwise accuracy and mean Bradley-Terry loss of ``rm`` on encoded pairs (ties count as wrong)."""
    device = next(rm.parameters()).device
    was_training = rm.training
    rm.eval()
    correct, loss_sum, margins = 0, 0.0, []
    for i in range(0, len(enc), batch_size):
        b = pair_batch(enc[i : i + batch_size], pad_id)
        r = gather_last(rm(b["input_ids"].to(device)), b["last"].to(device))
        n = r.shape[0] // 2
        loss, acc = bradley_terry_loss(r[:n], r[n:])
        correct += int(round(acc.item() * n))
        loss_sum += loss.item() * n
        margins.append(r[:n] - r[n:])
    rm.train(was_training)
    m = torch.cat(margins)
    return {"pair_accuracy": correct / len(enc), "bt_loss": loss_sum / len(enc), "margin_mean": m.mean().item(),
            "n_pairs": len(enc)}


def train_reward_model(model_dir, train_path, out_dir, train_cfg, *, val_path=None, resume=False, progress=None) -> dict:
    """Train a reward model from the run ``model_dir`` on pairs in ``train_path``; returns summary.json."""
    from llmlab.model.checkpoint import load_run
    from llmlab.train.loop import train

    backbone, tok = load_run(model_dir)
    rm = ScalarHeadModel(backbone)
    max_len = backbone.config.max_seq_len
    enc, dropped = encode_pairs(read_pairs(train_path), tok, max_len)
    val_enc = encode_pairs(read_pairs(val_path), tok, max_len)[0] if val_path else []
    batches = PairBatches(enc, train_cfg.batch_size, tok.pad_id, seed=train_cfg.seed)

    def eval_fn(model, final=True):
        if not val_enc:
            return {}
        res = pair_accuracy(model, val_enc, tok.pad_id)
        return {"val_pair_accuracy": res["pair_accuracy"], "val_loss": res["bt_loss"]}

    run_config = {"stage": "rm", "init": str(model_dir), "data": str(train_path), "val": str(val_path or ""),
                  "pairs": len(enc), "pairs_dropped_too_long": dropped, "val_pairs": len(val_enc)}
    result = train(rm, train_cfg, batches, rm_loss, out_dir, eval_fn=eval_fn, tokenizer=tok,
                   run_config=run_config, save_fn=lambda m, out: save_reward_model(out, m, tok),
                   resume=resume, progress=progress)
    return result.summary | {"out": str(Path(out_dir))}
