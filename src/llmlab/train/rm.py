"""The reward model: the SFT transformer with a scalar head, trained on preference pairs (Bradley-Terry).

    llmlab rm --model runs/sft --data data/pref/pairs_train.jsonl --val data/pref/pairs_val.jsonl --out runs/rm

    from llmlab.train.rm import RMConfig, run
    result = run(RMConfig(model="runs/sft", data="pairs_train.jsonl", val="pairs_val.jsonl", out="runs/rm"))
    result.summary["val_pair_accuracy"]

People compare two answers to the same prompt; the model learns a score r(prompt, answer) -- the head's
output at the last token -- such that P(chosen beats rejected) = sigmoid(r_c - r_r), by minimising
-log sigmoid(r_c - r_r). The run reports pairwise accuracy (share of held-out pairs with r_c > r_r) as
``val_pair_accuracy`` in summary.json. The folder holds the backbone as a normal run plus
``reward_head.safetensors`` (see rl_common.py); PPO and the win-rate evaluation load it with
``load_reward_model``.

Speed: a step's time is proportional to the tokens it runs, padding included. By default a pair is one row
``[prompt, chosen, rejected]`` (``shared_prompt_batch``: the prompt runs once, an attention mask keeps the
two answers apart) and batches hold pairs of similar length (``LengthBucketedPairs``): 3.3x fewer tokens and
3.4x less time per step than 2B randomly batched rows on the default pairs, with the same scores.

Two options, off by default: ``logprob_coef`` makes the reward include the answer's log-likelihood under the
model's own output head (``ScalarHeadModel``), so what the language model knows about the right answer counts
directly; ``lm_coef`` adds the chosen answers' next-token loss to the objective, which keeps that language model
from degrading as the head trains. On the default pipeline's pairs they raise held-out pair accuracy from
80-82% to 84-86%, but such a reward also prefers answers its language model finds likely: as a judge it rates
the speedrun's DPO and PPO models below SFT (47% win rate, vs 64-65% under a plain reward model), and PPO or
DPO trained against it win 47-61% under it (docs/LOG.md, 2026-11-23 sessions 4 and 5). Its score of a whole
conversation includes log p(prompt); PPO, the win rate and ranked pairs score the answer only
(``score_sequences(..., answer_starts=...)``).

What the head reads and what trains (docs/LOG.md 2026-12-02, session 7): ``head_layers`` > 1 concatenates the
last token's state at the top N layers (``--head-layers all`` in the speedrun: +2 points over the top layer
alone, two seeds); ``train_layers`` (freeze the embedding and lower blocks), ``backbone_lr_scale`` and
``dev_frac`` (early stopping on held-out training pairs) are there to try and measured no better than training
everything.
"""

from __future__ import annotations

import functools
import random

import torch

from llmlab.chat.pref_data import EncodedPair, PairBatches, encode_pairs, read_pairs
from llmlab.errors import LlmlabError
from llmlab.eval.rl_eval import pair_accuracy  # noqa: F401  (the dev/val evaluations; tests patch it here)
from llmlab.model.heads import ScalarHeadModel
from llmlab.model.sequences import gather_last
from llmlab.runs import save_reward_model
from llmlab.train.configs import RMConfig
from llmlab.train.loop import TrainConfig, TrainResult
from llmlab.train.losses import bradley_terry_loss
from llmlab.utils.config import config_to_dict, require


def rm_loss(model, batch: dict, lm_coef: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Bradley-Terry loss on one batch of pairs: shared-prompt rows (``shared_prompt_batch``), or 2B rows with
    the chosen ones first (``pair_batch``). ``lm_coef`` > 0 adds that times the chosen answers' next-token
    loss under the backbone's own output head (keeps the model able to produce what it is judging)."""
    shared = "attn_mask" in batch
    args = (batch["input_ids"], batch["positions"], batch["attn_mask"]) if shared else (batch["input_ids"],)
    extra = {}
    if lm_coef > 0:
        ids, mask = batch["input_ids"], batch["mask"]
        if not shared:  # pair_batch: only the chosen rows (the first half) are language-modelled
            mask = mask * (torch.arange(ids.shape[0], device=ids.device) < ids.shape[0] // 2).unsqueeze(1)
        targets = torch.where(mask[:, :-1] > 0, ids[:, 1:], -1)
        targets = torch.cat([targets, torch.full_like(ids[:, :1], -1)], dim=1)  # (rows, T), aligned with ids
        s, nll = model(*args, lm_targets=targets)
        extra["lm_loss"] = nll.detach()
    else:
        s = model(*args)
    if shared:
        rc, rr = gather_last(s, batch["last_chosen"]), gather_last(s, batch["last_rejected"])
    else:
        r = gather_last(s, batch["last"])  # (2B,)
        rc, rr = r[: r.shape[0] // 2], r[r.shape[0] // 2 :]
    loss, acc = bradley_terry_loss(rc, rr)
    if lm_coef > 0:
        loss = loss + lm_coef * nll
    r = torch.cat([rc, rr]).detach()
    return loss, {"pair_accuracy": acc, "reward_margin": (rc - rr).detach().mean(),
                  "reward_mean": r.mean(), "reward_std": r.std(), **extra}


def shared_prompt_batch(enc: list[EncodedPair], pad_id: int) -> dict:
    """B pairs as B rows ``[prompt, chosen answer, rejected answer]``, so the prompt is run once per pair.

    The rejected answer's positions restart where the prompt ends and the attention mask hides the chosen
    answer from it, so every score equals the one of the unpacked row ``[prompt, answer]`` (float rounding
    aside). Keys: ``input_ids`` (B, T), ``positions`` (B, T), ``attn_mask`` (B, 1, T, T) float, 0 or -inf,
    ``last_chosen`` / ``last_rejected`` (B,) the index of each answer's last token, ``mask`` (B, T) the chosen
    answer's targets (``mask[b, t]`` = 1 when ``input_ids[b, t + 1]`` is one of its tokens), ``num_tokens``."""
    if any(e.chosen_start != e.rejected_start or e.chosen[: e.chosen_start] != e.rejected[: e.rejected_start]
           for e in enc):
        raise ValueError("shared_prompt_batch: a pair's two sides must start with the same prompt")
    parts = [(e.chosen_start, len(e.chosen) - e.chosen_start, len(e.rejected) - e.rejected_start) for e in enc]
    B, T = len(enc), max(p + c + r for p, c, r in parts)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    positions = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T)
    allowed = torch.ones(T, T, dtype=torch.bool).tril().repeat(B, 1, 1)  # (B, T, T): causal
    for b, (e, (p, c, r)) in enumerate(zip(enc, parts)):
        ids[b, : p + c + r] = torch.tensor(e.chosen + e.rejected[p:], dtype=torch.long)
        positions[b, : p + c] = torch.arange(p + c)
        positions[b, p + c : p + c + r] = torch.arange(p, p + r)
        mask[b, p - 1 : p + c - 1] = 1.0
        allowed[b, p + c : p + c + r, p : p + c] = False  # the rejected answer never sees the chosen one
    attn_mask = torch.zeros(B, 1, T, T).masked_fill_(~allowed.unsqueeze(1), float("-inf"))
    last_chosen = torch.tensor([p + c - 1 for p, c, _ in parts])
    last_rejected = torch.tensor([p + c + r - 1 for p, c, r in parts])
    return {"input_ids": ids, "positions": positions, "attn_mask": attn_mask, "last_chosen": last_chosen,
            "last_rejected": last_rejected, "mask": mask, "num_tokens": int(sum(p + c + r for p, c, r in parts))}


def _pair_len(e: EncodedPair) -> int:
    return max(len(e.chosen), len(e.rejected))


def _shared_len(e: EncodedPair) -> int:
    return len(e.chosen) + len(e.rejected) - e.rejected_start


class LengthBucketedPairs(PairBatches):
    """``PairBatches`` whose batches hold pairs of similar length, so a batch pads to less; with
    ``shared_prompt`` its batches are ``shared_prompt_batch`` rows instead of ``pair_batch``'s 2B rows.

    Each epoch shuffles the pairs, cuts the order into chunks of ``bucket_batches`` batches, sorts each chunk
    by pair length, cuts it into batches and shuffles the batches (a pair still appears once per epoch, batch
    order stays random). Compute per step is proportional to the padded tokens: on the default pairs (rows of
    12-155 tokens, mean 37) random batches of 16 pairs hold 2.2x the real tokens, chunks of 32 batches 1.2x.
    ``bucket_batches=1`` and no ``shared_prompt`` is plain ``PairBatches``."""

    def __init__(self, enc: list[EncodedPair], batch_size: int, pad_id: int, *, seed: int = 0,
                 bucket_batches: int = 32, shared_prompt: bool):
        self.bucket_batches = max(1, int(bucket_batches))
        self.shared_prompt = shared_prompt
        super().__init__(enc, batch_size, pad_id, seed=seed)

    def _shuffle(self) -> list[int]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.enc)))
        rng.shuffle(order)
        if self.bucket_batches == 1:
            return order
        key = _shared_len if self.shared_prompt else _pair_len
        B, size = self.batch_size, self.batch_size * self.bucket_batches
        batches, rest = [], []
        for c in range(0, len(order), size):
            chunk = sorted(order[c : c + size], key=lambda i: key(self.enc[i]))
            for i in range(0, len(chunk), B):
                (batches.append if len(chunk[i : i + B]) == B else rest.extend)(chunk[i : i + B])
        rng.shuffle(batches)
        return [i for b in batches for i in b] + rest  # a short remainder last: next_batch skips it

    def _batch(self, enc: list[EncodedPair]) -> dict:
        return shared_prompt_batch(enc, self.pad_id) if self.shared_prompt else super()._batch(enc)


def rm_param_groups(rm: ScalarHeadModel, lr: float, weight_decay: float = 0.0, train_layers: int = -1,
                    backbone_lr_scale: float = 1.0) -> list[dict]:
    """AdamW groups for a reward model that keeps more of what its SFT backbone knows.

    ``train_layers`` = k trains only the top k transformer blocks (plus the final norm when k > 0) and the head;
    the embedding (tied to the output head) and the lower blocks are frozen (``requires_grad`` off, so their
    backward pass is skipped too). -1 trains everything. ``backbone_lr_scale`` multiplies the learning rate of
    the trainable backbone parameters; the head keeps ``lr``. Weight decay as ``default_param_groups`` puts it."""
    from llmlab.train.loop import default_param_groups

    bb = rm.backbone
    n = len(bb.layers)
    if train_layers >= 0 and not train_layers <= n:
        raise LlmlabError(f"--train-layers {train_layers}: the model has {n} layers")
    if train_layers >= 0:
        for p in bb.parameters():
            p.requires_grad_(False)
        for block in list(bb.layers)[n - train_layers :]:
            for p in block.parameters():
                p.requires_grad_(True)
        if train_layers > 0:
            for p in bb.norm.parameters():
                p.requires_grad_(True)
    head_ids = {id(p) for p in rm.head.parameters()}
    groups = []
    for is_head in (True, False):
        for g in default_param_groups(rm, weight_decay):
            params = [p for p in g["params"] if (id(p) in head_ids) == is_head]
            if params:
                groups.append({"params": params, "weight_decay": g["weight_decay"],
                               "lr": lr if is_head else lr * backbone_lr_scale})
    return groups


class BestWeights:
    """The weights with the best accuracy on a dev slice so far (early stopping), saved in checkpoints.
    ``checks`` counts the offers, so a resumed run numbers its checks on."""

    def __init__(self):
        self.accuracy, self.step, self.weights, self.checks = -1.0, 0, None, 0

    def offer(self, model, accuracy: float, step: int) -> None:
        self.checks += 1
        if accuracy > self.accuracy:
            self.accuracy, self.step = accuracy, step
            self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def state_dict(self) -> dict:
        return {"accuracy": self.accuracy, "step": self.step, "weights": self.weights, "checks": self.checks}

    def load_state_dict(self, state: dict) -> None:
        self.accuracy, self.step, self.weights = state["accuracy"], state["step"], state["weights"]
        self.checks = state.get("checks", 0)


def split_dev(enc: list[EncodedPair], dev_frac: float, seed: int) -> tuple[list, list]:
    """(train, dev): a random ``dev_frac`` of the pairs, by prompt, so no dev prompt is trained on."""
    prompts = sorted({tuple(e.chosen[: e.chosen_start]) for e in enc})
    random.Random(seed).shuffle(prompts)
    dev_prompts = set(prompts[: round(dev_frac * len(prompts))])
    dev = [e for e in enc if tuple(e.chosen[: e.chosen_start]) in dev_prompts]
    return [e for e in enc if tuple(e.chosen[: e.chosen_start]) not in dev_prompts], dev


def run(cfg: RMConfig, tcfg: TrainConfig | None = None, *, resume: bool = False,
        progress: bool | None = None) -> TrainResult:
    """Train a reward model from the run ``cfg.model`` on the pairs in ``cfg.data``; ``tcfg`` defaults to
    ``RMConfig.train_config()``. The summary (also RUN/summary.json) reports ``val_pair_accuracy`` with ``val``.

    ``bucket_batches``: batches are drawn length-sorted within chunks of this many (``LengthBucketedPairs``;
    1 = plain random batches). ``shared_prompt``: a pair is one row, its prompt run once
    (``shared_prompt_batch``). ``lm_coef``: weight of the chosen answers' next-token loss (``rm_loss``).
    ``logprob_coef``: the reward adds that times the answer's log-likelihood (``ScalarHeadModel``).
    ``train_layers`` / ``backbone_lr_scale``: what of the backbone trains, and how fast (``rm_param_groups``).
    ``head_layers``: how many layers' last-token states the head reads (``ScalarHeadModel``; 0 = all).
    ``dev_frac`` > 0 keeps that fraction of the training pairs (by prompt) out of training and ends with the
    weights that scored best on them, checked every ``tcfg.eval_every`` steps (early stopping)."""
    from llmlab.runs import load_run
    from llmlab.train.loop import train

    require(cfg, "rm")
    train_cfg = tcfg or RMConfig.train_config()
    if cfg.dev_frac and not train_cfg.eval_every:
        raise LlmlabError("--dev-frac needs --eval-every N (how often to check the dev pairs)")
    backbone, tok = load_run(cfg.model)
    head_layers = cfg.head_layers or backbone.config.n_layer  # 0 = every layer
    rm = ScalarHeadModel(backbone, logprob_coef=cfg.logprob_coef, head_layers=head_layers)
    groups = None  # the loop's default AdamW groups unless part of the backbone is frozen or slower
    if cfg.train_layers >= 0 or cfg.backbone_lr_scale != 1.0:
        if train_cfg.optimizer != "adamw":
            raise LlmlabError("--train-layers and --backbone-lr-scale need --optimizer adamw")
        groups = rm_param_groups(rm, train_cfg.lr, train_cfg.weight_decay, cfg.train_layers, cfg.backbone_lr_scale)
    max_len = backbone.config.max_seq_len
    enc, dropped = encode_pairs(read_pairs(cfg.data), tok, max_len)
    dev_enc = []
    if cfg.dev_frac > 0:
        enc, dev_enc = split_dev(enc, cfg.dev_frac, train_cfg.seed)
        if not dev_enc or not enc:
            raise LlmlabError(f"--dev-frac {cfg.dev_frac} leaves {len(enc)} training and {len(dev_enc)} dev pairs")
    val_enc = encode_pairs(read_pairs(cfg.val), tok, max_len)[0] if cfg.val else []
    batches = LengthBucketedPairs(enc, train_cfg.batch_size, tok.pad_id, seed=train_cfg.seed,
                                  bucket_batches=cfg.bucket_batches, shared_prompt=cfg.shared_prompt)
    best = BestWeights()  # the loop calls eval_fn every eval_every steps, then once at the end

    def eval_fn(model, final=True):
        out = {}
        if dev_enc:
            dev = pair_accuracy(model, dev_enc, tok.pad_id)["pair_accuracy"]
            best.offer(model, dev, -1 if final else (best.checks + 1) * train_cfg.eval_every)  # -1: the end
            out["dev_pair_accuracy"] = dev
            if final:
                model.load_state_dict(best.weights)
                out.update(best_dev_pair_accuracy=best.accuracy, best_step=best.step)
        if val_enc and (final or not dev_enc):  # with a dev slice, the held-out pairs are scored once, at the end
            res = pair_accuracy(model, val_enc, tok.pad_id)
            out.update(val_pair_accuracy=res["pair_accuracy"], val_loss=res["bt_loss"])
        return out

    run_config = {"stage": "rm", "rm": config_to_dict(cfg), "init": str(cfg.model), "data": str(cfg.data),
                  "val": str(cfg.val), "pairs": len(enc), "pairs_dropped_too_long": dropped, "val_pairs": len(val_enc),
                  "dev_pairs": len(dev_enc), "bucket_batches": cfg.bucket_batches,
                  "shared_prompt": cfg.shared_prompt, "lm_coef": cfg.lm_coef, "logprob_coef": cfg.logprob_coef,
                  "train_layers": None if cfg.train_layers < 0 else cfg.train_layers,
                  "backbone_lr_scale": cfg.backbone_lr_scale, "dev_frac": cfg.dev_frac, "head_layers": head_layers}
    loss_fn = functools.partial(rm_loss, lm_coef=cfg.lm_coef)
    return train(rm, train_cfg, batches, loss_fn, cfg.out, eval_fn=eval_fn, tokenizer=tok,
                 run_config=run_config, save_fn=lambda m, out: save_reward_model(out, m, tok),
                 extra_state={"best_dev": best} if dev_enc else None, param_groups=groups,
                 resume=resume, progress=progress)
