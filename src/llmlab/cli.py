"""The ``llmlab`` command: one subcommand per pipeline stage.

    llmlab --help                 list the stages
    llmlab data split --out DIR   the bundled corpus's standard train/validation split
    llmlab <stage> --help         typed flags with help text for one stage

This file only wires things up. Each stage module exposes ``register(subparsers)``, which adds its parser and
sets ``func`` to a handler that parses nothing itself and calls a library function a test can call too. Stage
modules import torch and other heavy libraries inside their handlers, so ``llmlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from llmlab import __version__
from llmlab.errors import LlmlabError

# Pipeline order; each module registers one or more subcommands.
STAGE_MODULES = [
    "llmlab.data.cli",  # data
    "llmlab.tokenizer.cli",  # tokenizer
    "llmlab.train.cli",  # pretrain
    "llmlab.train.sft_cli",  # sft
    "llmlab.eval.cli",  # eval bpb
    "llmlab.chat.cli",  # chat, chat synth
    "llmlab.train.rl_cli",  # rl-data, rm, dpo, ppo, grpo, eval rm/winrate/exact
    "llmlab.infer.cli",  # generate, next
    "llmlab.export.cli",  # export, import
    "llmlab.tools.cli",  # tool calc, tool python, tool call, tool list
    "llmlab.tools.index_cli",  # index, index search
    "llmlab.tools.assistant_cli",  # assistant create/list/show/update/delete
    "llmlab.safety.cli",  # guard check, redteam
    "llmlab.serve.cli",  # serve
    "llmlab.scaling.cli",  # scaling sweep, scaling fit, scaling predict
    "llmlab.inside.cli",  # inside attention, inside lens, inside reversal, inside detect
    "llmlab.reason.cli",  # reason, reason check, reason train
    "llmlab.speedrun",  # speedrun: the whole pipeline
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmlab",
        description="Build a ChatGPT-like assistant from scratch: data -> tokenizer -> pretrain -> SFT -> "
        "preference tuning -> inference, chat and export.",
    )
    parser.add_argument("--version", action="version", version=f"llmlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<stage>")
    for name in STAGE_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    try:
        result = args.func(args)
    except LlmlabError as e:
        print(f"llmlab: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("llmlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `llmlab ... | head`: the reader went away; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
