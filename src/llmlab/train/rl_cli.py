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
``--time-budget``, ``--device``, ``--resume``, ``--config FILE``, ...; see ``llmlab rm --help``), writes a run
folder and prints its summary as one JSON line. Each command's flags and defaults are derived from its config
dataclass (``llmlab.train.configs``; ``RLDataConfig`` in ``llmlab.tasks.pref_synth``). Handlers only build the
configs and call the library's ``run(config, train_config)`` (rm.py, dpo.py, ppo.py, grpo.py), importing torch
inside, so ``llmlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmlab.tasks.pref_synth import RLDataConfig
from llmlab.train.cli import add_stage_parser, progress_flag, stage_configs
from llmlab.train.configs import DPOConfig, GRPOConfig, PPOConfig, RankedPairsConfig, RMConfig
from llmlab.utils.config import add_config_flags, given_flags, layered


def _print(summary: dict) -> int:
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("rl-data", help="write the default preference pairs, verifiable tasks and RL prompts",
                       description="Generate (seeded) preference pairs, verifiable tasks and chat prompts from the "
                       "SFT generator's items, with a held-out split by item.", formatter_class=fmt)
    add_config_flags(p, RLDataConfig)
    p.set_defaults(func=_rl_data)

    p = sub.add_parser("ranked-pairs", help="preference pairs from the policy's own samples, ranked by a reward model",
                       description="For each prompt sample several answers from --model, score them with "
                       "--reward-model, and write best vs worst as a preference pair (on-policy data for DPO).",
                       formatter_class=fmt)
    add_config_flags(p, RankedPairsConfig)
    p.set_defaults(func=_ranked_pairs)

    p = add_stage_parser(sub, RMConfig, help="train a reward model on preference pairs (Bradley-Terry)",
                         description="Reward model: the transformer with a scalar head on the last token, trained "
                         "with -log sigmoid(r_chosen - r_rejected). Reports held-out pairwise accuracy.")
    p.set_defaults(func=_train_stage)

    p = add_stage_parser(sub, DPOConfig, help="Direct Preference Optimisation on preference pairs",
                         description="DPO: -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), the reference "
                         "being the starting model (its log-probs cached once).")
    p.set_defaults(func=_train_stage)

    p = add_stage_parser(sub, PPOConfig, help="PPO against a reward model (RLHF)",
                         description="PPO: rollouts through the engine, reward model score at the end of the answer, "
                         "per-token KL penalty to the reference, GAE, clipped policy and value losses.")
    p.set_defaults(func=_train_stage)

    p = add_stage_parser(sub, GRPOConfig, help="GRPO on verifiable tasks (group-relative advantages)",
                         description="GRPO: G samples per prompt, rewards from Python checkers, advantages "
                         "normalised within each group, clipped ratio, optional KL to the reference.")
    p.set_defaults(func=_train_stage)


# ----------------------------------------------------------------------------------------------------------
# Handlers


def _rl_data(args) -> int:
    from llmlab.tasks.pref_synth import write_pref_data

    return _print(write_pref_data(layered(RLDataConfig, given_flags(args, RLDataConfig))))


def _ranked_pairs(args) -> int:
    from llmlab.train.ranked_pairs import write_ranked_pairs

    return _print(write_ranked_pairs(layered(RankedPairsConfig, given_flags(args, RankedPairsConfig))))


def _train_stage(args) -> int:
    """rm, dpo, ppo, grpo: build the configs, run the stage, print its summary (and the run folder)."""
    import importlib

    cfg, tcfg = stage_configs(args)
    stage = importlib.import_module(f"llmlab.train.{cfg.name}")
    result = stage.run(cfg, tcfg, resume=args.resume, progress=progress_flag(args))
    return _print(result.summary | {"out": str(Path(cfg.out))})
