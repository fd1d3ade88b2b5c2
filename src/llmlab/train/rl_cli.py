"""CLI wiring for preference learning and RL: ``llmlab rl-data | ranked-pairs | rm | dpo | ppo | grpo`` (their
evaluations, ``llmlab eval rm | winrate | exact``, are in ``llmlab.eval.cli``).

    llmlab rl-data --out data/pref                       # default pairs, verifiable tasks, chat prompts
    llmlab ranked-pairs --model runs/sft --reward-model runs/rm --prompts data/pref/chat_prompts_train.jsonl --out p.jsonl
    llmlab rm   --model runs/sft --data data/pref/pairs_train.jsonl --val data/pref/pairs_val.jsonl --out runs/rm
    llmlab dpo  --model runs/sft --data data/pref/pairs_train.jsonl --val data/pref/pairs_val.jsonl --out runs/dpo
    llmlab ppo  --model runs/sft --reward-model runs/rm --prompts data/pref/chat_prompts_train.jsonl --out runs/ppo
    llmlab grpo --model runs/sft --prompts data/pref/tasks_train.jsonl --val data/pref/tasks_val.jsonl --out runs/grpo
    llmlab eval winrate --model runs/dpo --baseline runs/sft --judge runs/rm --prompts data/pref/chat_prompts_val.jsonl

Every training command takes the shared training-loop flags (``--max-steps``, ``--lr``, ``--batch-size``,
``--time-budget``, ``--device``, ``--resume``, ...; see ``llmlab rm --help``), writes a run folder and prints
its summary as one JSON line. Handlers only parse and call the library (rm.py, dpo.py, ppo.py, grpo.py,
eval/rl_eval.py), importing torch inside, so ``llmlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json

# Per-stage defaults for the shared loop (CPU-sized; every one can be overridden by its flag). RM: lr 6e-4 beat
# 1e-4 and 3e-4 on the speedrun's pairs (held-out accuracy 69% / 80% / 82%, docs/LOG.md 2026-11-23).
RM_DEFAULTS = dict(lr=6e-4, max_steps=600, batch_size=16, warmup_steps=10, schedule="cosine", weight_decay=0.0,
                   min_lr_frac=0.1)
DPO_DEFAULTS = dict(lr=5e-5, max_steps=200, batch_size=16, warmup_steps=10, schedule="cosine", weight_decay=0.0,
                    min_lr_frac=0.1)
# PPO: lr 1e-4 and 300 steps (with --kl-coef 0.05) won 67-71% of held-out prompts against SFT under two
# independently trained judges, where 2e-5 / 120 steps tied (docs/LOG.md 2026-11-23).
PPO_DEFAULTS = dict(lr=1e-4, max_steps=300, batch_size=16, warmup_steps=5, schedule="constant", weight_decay=0.0)
# GRPO (with 32 prompts x 4 answers, dynamic sampling, kl 0.1): lr 5e-4 decaying to 0 over the last 30% of 800
# steps gained +10.8 to +17.3 points of held-out exact match over four SFT models, a constant 3e-4 +11.9 to +15.2,
# a constant 5e-4 less; 1200 steps gained 1-3 more (docs/LOG.md session 11; the constant-lr history: 2026-11-23
# GRPO ceiling, session 10).
GRPO_DEFAULTS = dict(lr=5e-4, max_steps=1200, batch_size=16, warmup_steps=5, schedule="wsd", cooldown_frac=0.3,
                     weight_decay=0.0)


def _train_cfg(args, defaults):
    from llmlab.train.cli import train_config_from_args

    return train_config_from_args(args, defaults)


def _print(summary: dict) -> int:
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _layers(value: str) -> int:
    """A layer count for --head-layers: a positive int, or 'all' (0: every layer of the model)."""
    if value == "all":
        return 0
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of layers or 'all'")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    from llmlab.train.cli import add_train_flags

    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("rl-data", help="write the default preference pairs, verifiable tasks and RL prompts",
                       description="Generate (seeded) preference pairs, verifiable tasks and chat prompts from the "
                       "SFT generator's items, with a held-out split by item.", formatter_class=fmt)
    p.add_argument("--out", required=True, help="folder for pairs_*.jsonl, tasks_*.jsonl, chat_prompts_*.jsonl")
    p.add_argument("--pairs", type=int, default=3000, help="training preference pairs")
    p.add_argument("--val-pairs", type=int, default=300, help="held-out preference pairs")
    p.add_argument("--tasks", type=int, default=2000, help="training tasks (GRPO)")
    p.add_argument("--chat-prompts", type=int, default=None, help="training chat prompts (PPO, DPO's ranked pairs); "
                   "default: as many as --tasks")
    p.add_argument("--val-tasks", type=int, default=300, help="held-out tasks / chat prompts")
    p.add_argument("--task-share", action="append", default=[], metavar="KIND=FRACTION",
                   help="make this fraction of the training tasks of this kind (repeatable; the other kinds fill "
                   "the rest in the generator's proportions; held-out tasks keep the generator's mix)")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    p.set_defaults(func=_rl_data)

    p = sub.add_parser("ranked-pairs", help="preference pairs from the policy's own samples, ranked by a reward model",
                       description="For each prompt sample several answers from --model, score them with "
                       "--reward-model, and write best vs worst as a preference pair (on-policy data for DPO).",
                       formatter_class=fmt)
    p.add_argument("--model", required=True, help="run folder whose answers are sampled (the policy DPO starts from)")
    p.add_argument("--reward-model", required=True, help="run folder from llmlab rm")
    p.add_argument("--prompts", required=True, help="prompts JSONL {prompt} (training prompts)")
    p.add_argument("--out", required=True, help="pairs JSONL to write")
    p.add_argument("-n", "--n", type=int, default=None, help="use the first N prompts")
    p.add_argument("--samples", type=int, default=4, help="answers sampled per prompt")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=int, default=64, help="answer length limit")
    p.add_argument("--min-margin", type=float, default=0.5, help="keep pairs whose reward gap is at least this")
    p.add_argument("--against", choices=["worst", "greedy"], default="worst",
                   help="reject the worst-scored sample, or (greedy) the model's greedy answer whenever a sample "
                   "scores above it")
    p.add_argument("--check-answers", action="store_true",
                   help="prompts with a checkable answer: a right answer (exact match) beats a wrong one whatever "
                   "the reward model says; the judge ranks within each")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.set_defaults(func=_ranked_pairs)

    p = sub.add_parser("rm", help="train a reward model on preference pairs (Bradley-Terry)",
                       description="Reward model: the transformer with a scalar head on the last token, trained "
                       "with -log sigmoid(r_chosen - r_rejected). Reports held-out pairwise accuracy.",
                       formatter_class=fmt)
    _model_out(p)
    p.add_argument("--data", required=True, help="preference pairs JSONL {prompt, chosen, rejected}")
    p.add_argument("--val", default=None, help="held-out pairs JSONL (pairwise accuracy)")
    p.add_argument("--bucket-batches", type=int, default=32,
                   help="draw batches length-sorted within chunks of this many batches (less padding); 1 = random")
    p.add_argument("--shared-prompt", action=argparse.BooleanOptionalAction, default=True,
                   help="one row per pair, [prompt, chosen, rejected], the prompt computed once (same scores)")
    p.add_argument("--lm-coef", type=float, default=0.0,
                   help="add this times the chosen answers' next-token loss (LM regulariser; 0 = off)")
    p.add_argument("--logprob-coef", type=float, default=0.0,
                   help="the reward adds this times the answer's log-likelihood under the model's own LM head")
    p.add_argument("--train-layers", type=int, default=-1,
                   help="train only the top N transformer blocks and the head, the embedding and lower blocks "
                   "frozen (-1 = train everything)")
    p.add_argument("--backbone-lr-scale", type=float, default=1.0,
                   help="the backbone's learning rate as a fraction of --lr (the head's)")
    p.add_argument("--head-layers", type=_layers, default=1,
                   help="the head reads the last token's state at the top N layers (concatenated), not the top one "
                   "alone; 'all' = every layer")
    p.add_argument("--dev-frac", type=float, default=0.0,
                   help="hold this fraction of the training pairs out (by prompt) and keep the weights that score "
                   "best on them, checked every --eval-every steps (early stopping; 0 = off)")
    add_train_flags(p)
    p.set_defaults(func=_rm)

    p = sub.add_parser("dpo", help="Direct Preference Optimisation on preference pairs",
                       description="DPO: -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), the reference "
                       "being the starting model (its log-probs cached once).", formatter_class=fmt)
    _model_out(p)
    p.add_argument("--data", required=True, help="preference pairs JSONL {prompt, chosen, rejected}")
    p.add_argument("--val", default=None, help="held-out pairs JSONL")
    p.add_argument("--beta", type=float, default=0.1, help="strength of the implicit KL to the reference")
    p.add_argument("--nll-coef", type=float, default=0.0,
                   help="weight of the chosen answers' per-token NLL added to the DPO loss (RPO; 0 = plain DPO)")
    p.add_argument("--lora-rank", type=int, default=0,
                   help="train rank-r LoRA adapters instead of every weight, merged in at the end (0 = full)")
    add_train_flags(p)
    p.set_defaults(func=_dpo)

    p = sub.add_parser("ppo", help="PPO against a reward model (RLHF)",
                       description="PPO: rollouts through the engine, reward model score at the end of the answer, "
                       "per-token KL penalty to the reference, GAE, clipped policy and value losses.",
                       formatter_class=fmt)
    _model_out(p)
    p.add_argument("--reward-model", required=True, help="run folder from llmlab rm")
    p.add_argument("--prompts", required=True, help="prompts JSONL {prompt}")
    # 64 rather than 32: the same steps from twice the answers won 73.4 / 71.9% vs 64.9 / 66.6% (LOG session 12)
    p.add_argument("--rollout-prompts", type=int, default=64, help="prompts answered per rollout")
    p.add_argument("--epochs", type=int, default=2, help="passes over each rollout")
    p.add_argument("--minibatch", type=int, default=32, help="answers per optimizer step")
    p.add_argument("--kl-coef", type=float, default=0.05, help="per-token KL penalty coefficient")
    p.add_argument("--kl-estimator", choices=["k1", "k3"], default="k1", help="per-token KL estimator")
    p.add_argument("--kl-target", type=float, default=None,
                   help="steer the KL coefficient (starting at --kl-coef) after each rollout toward this KL to the "
                   "reference, nats per answer (adaptive KL controller; default: a fixed coefficient)")
    p.add_argument("--kl-horizon", type=float, default=500.0,
                   help="with --kl-target: answers over which the coefficient moves by at most ~20%%")
    p.add_argument("--clip", type=float, default=0.2, help="policy ratio clip")
    p.add_argument("--value-clip", type=float, default=0.2, help="value clip")
    p.add_argument("--vf-coef", type=float, default=0.1, help="value loss weight")
    p.add_argument("--gamma", type=float, default=1.0, help="discount")
    p.add_argument("--lam", type=float, default=0.95, help="GAE lambda")
    p.add_argument("--max-new-tokens", type=int, default=48, help="answer length limit in rollouts")
    p.add_argument("--temperature", type=float, default=1.0, help="rollout sampling temperature")
    p.add_argument("--unfinished-penalty", type=float, default=0.0,
                   help="subtracted from the score of answers that hit the length limit")
    p.add_argument("--logprob-reward", choices=["token", "answer"], default="token",
                   help="with a log-likelihood reward model (rm --logprob-coef): pay coef x log p of each answer "
                   "token as it is generated (token) or all of it at the answer's end (answer); same total")
    p.add_argument("--baseline", choices=["none", "greedy"], default="none",
                   help="greedy: subtract the score of the policy's greedy answer to the same prompt from each "
                   "answer's reward (ReMax; a per-prompt constant, one more generation per rollout)")
    p.add_argument("--check-coef", type=float, default=0.0,
                   help="prompts with a checkable answer: add this to the reward of an exactly right answer and "
                   "subtract it from a wrong one (0 = the reward model alone)")
    add_train_flags(p)
    p.set_defaults(func=_ppo)

    p = sub.add_parser("grpo", help="GRPO on verifiable tasks (group-relative advantages)",
                       description="GRPO: G samples per prompt, rewards from Python checkers, advantages "
                       "normalised within each group, clipped ratio, optional KL to the reference.",
                       formatter_class=fmt)
    _model_out(p)
    p.add_argument("--prompts", required=True, help="tasks JSONL {prompt, answer}")
    p.add_argument("--val", default=None, help="held-out tasks JSONL (exact match before/after)")
    p.add_argument("--reward", default="exact", help="comma-separated reward functions (summed): exact, partial, digits, brevity")
    # 32 x 4 rather than 16 x 8: twice the prompts per step for the same answers trained (LOG session 10)
    p.add_argument("--group-size", type=int, default=4, help="samples per prompt (G)")
    p.add_argument("--rollout-prompts", type=int, default=32, help="prompts per rollout")
    p.add_argument("--epochs", type=int, default=1, help="passes over each rollout")
    p.add_argument("--minibatch", type=int, default=None, help="answers per optimizer step (default: the rollout)")
    p.add_argument("--clip", type=float, default=0.2, help="policy ratio clip")
    # from a strong SFT model 400 steps without it lost 3.5 points, with 0.1 gained 0.5 (LOG sessions 5, 8)
    p.add_argument("--kl-coef", type=float, default=0.1, help="k3 KL-to-reference penalty weight (0 = off)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="answer length limit")
    p.add_argument("--temperature", type=float, default=1.0, help="rollout sampling temperature")
    p.add_argument("--unfinished-reward", type=float, default=None,
                   help="reward of answers that hit the length limit (default: as scored)")
    p.add_argument("--dynamic-sampling", action=argparse.BooleanOptionalAction, default=True,
                   help="DAPO: drop groups whose rewards all agree, sample more prompts to refill the rollout")
    p.add_argument("--max-draws", type=int, default=4,
                   help="with --dynamic-sampling: at most this many prompt batches sampled per rollout")
    p.add_argument("--advantage", choices=["grpo", "drgrpo"], default="grpo",
                   help="grpo: (r - mean) / std, token-mean loss; drgrpo: r - mean, loss / (rows x max-new-tokens)")
    p.add_argument("--clip-high", type=float, default=None,
                   help="upper ratio clip (DAPO clip-higher; default = --clip); matters with epochs/minibatches")
    add_train_flags(p)
    p.set_defaults(func=_grpo)


def _model_out(p) -> None:
    p.add_argument("--model", required=True, help="run folder to start from (the SFT model); also the reference")
    p.add_argument("--out", required=True, help="run folder to write")


# ----------------------------------------------------------------------------------------------------------
# Handlers


def _rl_data(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.tasks.pref_synth import write_pref_data

    shares = {}
    for item in args.task_share:
        kind, sep, frac = item.partition("=")
        try:
            shares[kind.strip()] = float(frac)
        except ValueError:
            sep = ""
        if not sep:
            raise LlmlabError(f"--task-share: expected KIND=FRACTION (e.g. arithmetic=0.5), got {item!r}")
    try:
        return _print(write_pref_data(args.out, n_pairs=args.pairs, n_val_pairs=args.val_pairs, n_tasks=args.tasks,
                                      n_val_tasks=args.val_tasks, n_chat_prompts=args.chat_prompts, seed=args.seed,
                                      task_shares=shares))
    except ValueError as e:  # a bad share: unknown kind, or fractions that do not fit
        raise LlmlabError(f"--task-share: {e}") from None


def _ranked_pairs(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.train.ranked_pairs import write_ranked_pairs

    if args.samples < 2:
        raise LlmlabError("--samples must be at least 2 (a pair needs two answers)")
    return _print(write_ranked_pairs(args.out, args.model, args.reward_model, args.prompts, n_prompts=args.n,
                                     samples=args.samples, temperature=args.temperature,
                                     max_new_tokens=args.max_new_tokens, min_margin=args.min_margin,
                                     seed=args.seed, against=args.against, check_answers=args.check_answers,
                                     device=args.device))


def _rm(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.train.rm import train_reward_model

    if args.bucket_batches < 1 or args.lm_coef < 0 or args.logprob_coef < 0:
        raise LlmlabError("--bucket-batches must be at least 1, --lm-coef and --logprob-coef at least 0")
    if args.train_layers < -1 or args.backbone_lr_scale < 0 or not 0 <= args.dev_frac < 1:
        raise LlmlabError("--train-layers must be -1 or more, --backbone-lr-scale at least 0, --dev-frac in [0, 1)")
    cfg = _train_cfg(args, RM_DEFAULTS)
    if args.dev_frac and not cfg.eval_every:
        raise LlmlabError("--dev-frac needs --eval-every N (how often to check the dev pairs)")
    return _print(train_reward_model(args.model, args.data, args.out, cfg,
                                     val_path=args.val, bucket_batches=args.bucket_batches,
                                     shared_prompt=args.shared_prompt, lm_coef=args.lm_coef,
                                     logprob_coef=args.logprob_coef,
                                     train_layers=None if args.train_layers < 0 else args.train_layers,
                                     backbone_lr_scale=args.backbone_lr_scale, dev_frac=args.dev_frac,
                                     head_layers=args.head_layers,
                                     resume=args.resume, progress=False if args.no_progress else None))


def _dpo(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.train.dpo import train_dpo

    if args.beta <= 0:
        raise LlmlabError("--beta must be positive")
    if args.nll_coef < 0:
        raise LlmlabError("--nll-coef must be >= 0")
    return _print(train_dpo(args.model, args.data, args.out, _train_cfg(args, DPO_DEFAULTS), beta=args.beta,
                            nll_coef=args.nll_coef, lora_rank=args.lora_rank,
                            val_path=args.val, resume=args.resume, progress=False if args.no_progress else None))


def _ppo(args) -> int:
    from llmlab.train.ppo import train_ppo

    return _print(train_ppo(args.model, args.reward_model, args.prompts, args.out, _train_cfg(args, PPO_DEFAULTS),
                            rollout_prompts=args.rollout_prompts, epochs=args.epochs, minibatch=args.minibatch,
                            clip=args.clip, value_clip=args.value_clip, vf_coef=args.vf_coef, kl_coef=args.kl_coef,
                            kl_estimator=args.kl_estimator, gamma=args.gamma, lam=args.lam,
                            max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                            unfinished_penalty=args.unfinished_penalty, logprob_reward=args.logprob_reward,
                            baseline=args.baseline, check_coef=args.check_coef, kl_target=args.kl_target,
                            kl_horizon=args.kl_horizon, resume=args.resume,
                            progress=False if args.no_progress else None))


def _grpo(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.tasks.rewards import REWARD_FUNCTIONS
    from llmlab.train.grpo import train_grpo

    names = [n.strip() for n in args.reward.split(",") if n.strip()]
    unknown = [n for n in names if n not in REWARD_FUNCTIONS]
    if unknown or not names:
        raise LlmlabError(f"--reward: unknown reward function(s) {unknown}; choose from {', '.join(REWARD_FUNCTIONS)}")
    if args.group_size < 2:
        raise LlmlabError("--group-size must be at least 2 (advantages are relative to the group)")
    return _print(train_grpo(args.model, args.prompts, args.out, _train_cfg(args, GRPO_DEFAULTS), val_path=args.val,
                             reward_fns=[REWARD_FUNCTIONS[n] for n in names], group_size=args.group_size,
                             rollout_prompts=args.rollout_prompts, epochs=args.epochs, minibatch=args.minibatch,
                             clip=args.clip, kl_coef=args.kl_coef, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, unfinished_reward=args.unfinished_reward,
                             dynamic_sampling=args.dynamic_sampling, max_draws=args.max_draws,
                             advantage=args.advantage, clip_high=args.clip_high,
                             resume=args.resume, progress=False if args.no_progress else None))
