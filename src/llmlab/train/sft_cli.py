"""``llmlab sft``: supervised fine-tuning of a base run on conversations (loss on the assistant's answers).

    llmlab sft --model runs/base --data bundled --out runs/sft             # generated default conversations
    llmlab sft --model runs/base --data chats.jsonl --out runs/sft --epochs 3 [--val-data val.jsonl]
    llmlab sft --model runs/base --data chats.jsonl --out runs/sft --skip-bad --no-packing
    llmlab sft --model runs/base --data bundled --out runs/sft --resume     # continue after Ctrl-C

The training-loop flags are pretraining's (``llmlab pretrain --help``), with SFT's defaults (``SFTConfig`` in
``llmlab.train.configs``); the context is the base model's unless --seq-len asks for less. With no horizon flag
the run makes --epochs passes over the training conversations. Prints summary.json's numbers as one JSON line.
"""

from __future__ import annotations

import argparse
import json

from llmlab.train.cli import add_stage_parser, progress_flag, stage_configs
from llmlab.train.configs import SFTConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = add_stage_parser(sub, SFTConfig, help="supervised fine-tuning on conversations (base model -> assistant)",
                         description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.set_defaults(func=_sft)


def _sft(args) -> int:
    from llmlab.train.sft import run
    from llmlab.utils.dist import dist_info

    cfg, tcfg = stage_configs(args)
    result = run(cfg, tcfg, resume=args.resume, progress=progress_flag(args))
    if result.interrupted:
        return 130
    if dist_info()[0] == 0:
        print(json.dumps(result.summary))
    return 0
